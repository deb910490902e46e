// linear in mixed precision (engine/precision.ts): y = act(x·Wᵀ + b) + residual with x and W read as
// f16 (packed two per u32, kernels/cast.ts) and accumulated in f32; bias, GELU, residual and the
// output stay f32. Backward keeps the f16 copy of x (half the bytes of an f32 one) — or nothing extra
// when x can be recomputed from what its producer keeps anyway (GELU's output, a LayerNorm's output:
// engine/autograd.ts recomputable()), casting the recomputed x again —, casts W again
// (a parameter is kept anyway; a saved f16 copy of every weight would cost more than the cast) and casts
// the output's gradient to f16 for its two matmuls: a gradient too large for f16 becomes inf there, which
// is how loss scaling (train/loss-scale.ts) finds the overflow. engine/ops/matmul.ts's linear checks
// the shapes and sends mixed calls here.

import type { Tensor } from '../tensor.js';
import { isRecomputable, needsGrad, noGrad, recomputable, record } from '../autograd.js';
import { elementwise } from './elementwise.js';
import { castToHalf } from '../../kernels/cast.js';
import { matmulFused } from '../../kernels/matmul.js';

export function linearMixed(x: Tensor, weight: Tensor, bias: Tensor | null | undefined, opts: { gelu?: boolean; residual?: Tensor }): Tensor {
  const [outF, inF] = weight.shape;
  const gelu = Boolean(opts.gelu);
  const residual = opts.residual;
  const grad = needsGrad(x, weight, bias, residual);
  const { out, pre, xh, wh } = noGrad(() => {
    const xh = castToHalf(x);
    const wh = castToHalf(weight);
    const whT = wh.transpose();
    const r = matmulFused(xh, whT, { bias: bias ?? undefined, gelu, residual, preActivation: gelu && grad });
    whT.dispose();
    return { ...r, xh, wh };
  });
  if (!grad) {
    xh.dispose();
    wh.dispose();
    return out;
  }
  const inputs = [x, weight, ...(bias ? [bias] : []), ...(residual ? [residual] : [])];
  const rows = x.size / inF;
  const needX = x.requiresGrad;
  const needW = weight.requiresGrad;
  wh.dispose();
  // The same f16 values either way: the cast is deterministic.
  const savedX = isRecomputable(x) ? x : xh;
  record(out, 'linear (mixed)', inputs, pre ? [savedX, weight, pre] : [savedX, weight], (g, [xsaved, w32, zs]) => {
    const xs = xsaved.dtype === 'f16' ? xsaved : castToHalf(xsaved);
    // As linear's: dz = act'(z)·g, dx = dz·W, dW = dzᵀ·x, db = Σ dz, dr = g; the matmuls read f16.
    const dz = zs ? elementwise('geluGrad', [zs, g]) : g;
    const dzh = castToHalf(dz);
    const dz2 = dzh.reshape([rows, outF]);
    const dz2T = dz2.transpose();
    const x2 = xs.reshape([rows, inF]);
    const ws = needX ? castToHalf(w32) : null;
    const grads: (Tensor | null)[] = [ws ? matmulFused(dzh, ws).out : null, needW ? matmulFused(dz2T, x2).out : null];
    for (const t of [dzh, dz2, dz2T, x2, ws, xs === xsaved ? null : xs]) t?.dispose();
    if (bias) grads.push(bias.requiresGrad ? dz.reshape([rows, outF]).sum(0) : null);
    if (residual) grads.push(residual.requiresGrad ? g : null);
    return grads;
  });
  // As linear's: a later op that saves GELU's output (fc2) holds the pre-activation and recomputes it.
  if (pre && !residual) recomputable(out, [2], ([z]) => elementwise('gelu', [z]));
  pre?.dispose();
  xh.dispose();
  return out;
}
