// Optimizers and gradient clipping. Updates run as GPU kernels recorded like any op (no graph), so a
// training step needs no read-back; the AdamW kernel and its CPU reference are in kernels/adamw.ts.

import { Tensor } from './tensor.js';
import { keep, tidy } from './scope.js';
import { noGrad } from './autograd.js';
import { ShapeError, VitgpuError } from './errors.js';
import { adamwStep, type AdamWHyper } from '../kernels/adamw.js';

/**
 * Scales all gradients so their global L2 norm is at most `maxNorm` (torch.nn.utils.clip_grad_norm_).
 * Returns the norm before clipping and the scale factor, both as GPU scalars (read them when needed).
 * The scale is not applied here: pass it to AdamW.step({ gradScale }), which folds it into its pass.
 */
export function gradNormScale(params: readonly Tensor[], maxNorm: number): { norm: Tensor; scale: Tensor } {
  if (!(maxNorm > 0)) throw new ShapeError(`gradient clipping: maxNorm must be positive, got ${maxNorm}`);
  return noGrad(() =>
    tidy(() => {
      const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== null);
      const sq = grads.length ? grads.map((g) => g.square().sum()).reduce((a, b) => a.add(b)) : params[0].device.zeros([]);
      const norm = sq.sqrt();
      // min(1, maxNorm / (norm + 1e-6)), as PyTorch.
      const scale = norm.add(1e-6).reciprocal().mul(maxNorm).minimum(1);
      return { norm, scale };
    }),
  );
}

export interface AdamWOptions extends Partial<AdamWHyper> {}

interface State {
  m: Tensor;
  v: Tensor;
}

/** AdamW with PyTorch's defaults (lr 1e-3, betas 0.9/0.999, eps 1e-8, weight decay 0.01). */
export class AdamW {
  readonly hyper: AdamWHyper;
  stepCount = 0;
  private readonly state = new Map<Tensor, State>();

  constructor(readonly params: readonly Tensor[], opts: AdamWOptions = {}) {
    this.hyper = {
      lr: opts.lr ?? 1e-3,
      beta1: opts.beta1 ?? 0.9,
      beta2: opts.beta2 ?? 0.999,
      eps: opts.eps ?? 1e-8,
      weightDecay: opts.weightDecay ?? 0.01,
    };
    for (const p of params) {
      if (!p.requiresGrad) throw new VitgpuError(`AdamW: parameter ${p} does not require grad`);
      if (!p.isContiguous) throw new VitgpuError(`AdamW: parameter ${p} must be contiguous`);
    }
  }

  /** One update of every parameter that has a gradient; `gradScale` (a GPU scalar) multiplies the gradients. */
  step(opts: { gradScale?: Tensor; lr?: number } = {}): void {
    this.stepCount++;
    const hyper = { ...this.hyper, lr: opts.lr ?? this.hyper.lr };
    const dev = this.params[0]?.device;
    if (!dev) return;
    const one = opts.gradScale ? null : dev.ones([1]);
    const scale = opts.gradScale ?? one!;
    for (const p of this.params) {
      const g = p.grad;
      if (!g) continue;
      let st = this.state.get(p);
      if (!st) {
        st = { m: keep(dev.zeros(p.shape)), v: keep(dev.zeros(p.shape)) };
        this.state.set(p, st);
      }
      const gc = g.isContiguous ? g : noGrad(() => g.contiguous());
      adamwStep(p, st.m, st.v, gc, scale, hyper, this.stepCount);
      if (gc !== g) gc.dispose();
    }
    one?.dispose();
  }

  zeroGrad(): void {
    for (const p of this.params) p.zeroGrad();
  }

  /** Moment buffers, for checkpoints: [m, v] per parameter in `params` order (null before the first step). */
  moments(): ([Tensor, Tensor] | null)[] {
    return this.params.map((p) => {
      const st = this.state.get(p);
      return st ? [st.m, st.v] : null;
    });
  }

  /** Restores moment buffers (copied) and the step count from a checkpoint. */
  loadMoments(moments: readonly ([Float32Array, Float32Array] | null)[], stepCount: number): void {
    if (moments.length !== this.params.length) throw new VitgpuError(`AdamW: ${moments.length} moment pairs for ${this.params.length} parameters`);
    this.stepCount = stepCount;
    moments.forEach((mv, i) => {
      const p = this.params[i];
      const old = this.state.get(p);
      old?.m.dispose();
      old?.v.dispose();
      this.state.delete(p);
      if (mv) this.state.set(p, { m: keep(p.device.tensor(mv[0], p.shape)), v: keep(p.device.tensor(mv[1], p.shape)) });
    });
  }

  dispose(): void {
    for (const st of this.state.values()) {
      st.m.dispose();
      st.v.dispose();
    }
    this.state.clear();
  }
}
