// The LoRA linear (Hu et al. 2021, as PEFT implements it): y = act(x·Wᵀ + b + s·(drop(x)·Aᵀ)·Bᵀ) + r,
// with A [rank, in], B [out, rank] and s = alpha / rank. It is composed of differentiable ops (linear,
// mul, concat, gelu), so its backward is theirs; a frozen W (requiresGrad false) gets no gradient and
// keeps no activations for one. A fused projection (ViT's qkv) can take one adapter per row block of
// W, or none for a block (LoRA on q and v only). Dropout acts on the adapter's input only, with a mask
// drawn from a given seed, so a recomputed or resumed step draws the same mask.

import type { Tensor } from '../tensor.js';
import { ShapeError } from '../errors.js';
import { shapeStr } from '../shape.js';
import { elementwise } from './elementwise.js';
import { linear, type LinearOptions } from './matmul.js';
import { concat } from './views.js';
import { full, rand } from './creation.js';

export interface LoraFactors {
  /** [rank, in] */
  a: Tensor;
  /** [blockOut, rank] */
  b: Tensor;
}

export interface LoraLinearOptions extends LinearOptions {
  /** alpha / rank. */
  scale: number;
  /**
   * One entry per equal row block of W (a single entry: the whole output); null leaves that block
   * without an adapter.
   */
  adapters: readonly (LoraFactors | null)[];
  /** Dropout on the adapter input: probability and the seed of its mask (training only). */
  dropout?: { p: number; seed: number } | null;
}

/** Inverted dropout with a seeded mask: x·[u >= p]/(1 − p), u uniform in [0, 1) (kernels/random.ts). */
export function seededDropout(x: Tensor, p: number, seed: number): Tensor {
  if (!(p >= 0 && p < 1)) throw new ShapeError(`dropout: probability must be in [0, 1), got ${p}`);
  if (p === 0) return x;
  const u = rand(x.device, x.shape, { seed });
  const keepMask = elementwise('greaterEqual', [u, full(x.device, [], p)]);
  return x.mul(keepMask.mul(1 / (1 - p)));
}

/** act(x·Wᵀ + b + LoRA update) + residual; see the file comment. */
export function loraLinear(x: Tensor, weight: Tensor, bias: Tensor | null | undefined, opts: LoraLinearOptions): Tensor {
  const [outF, inF] = weight.shape;
  const blocks = opts.adapters.length;
  if (blocks === 0 || outF % blocks !== 0) throw new ShapeError(`loraLinear: ${blocks} row blocks do not divide weight ${shapeStr(weight.shape)}`);
  const blockOut = outF / blocks;
  for (const f of opts.adapters) {
    if (!f) continue;
    const r = f.a.shape[0];
    if (f.a.rank !== 2 || f.a.shape[1] !== inF || f.b.rank !== 2 || f.b.shape[0] !== blockOut || f.b.shape[1] !== r) {
      throw new ShapeError(`loraLinear: adapter A ${shapeStr(f.a.shape)}, B ${shapeStr(f.b.shape)} do not fit weight ${shapeStr(weight.shape)} in ${blocks} block(s)`);
    }
  }
  const input = opts.dropout && opts.dropout.p > 0 ? seededDropout(x, opts.dropout.p, opts.dropout.seed) : x;
  const lead = x.shape.slice(0, -1);
  const parts = opts.adapters.map((f) =>
    f ? linear(linear(input, f.a).mul(opts.scale), f.b) : full(x.device, [...lead, blockOut], 0),
  );
  const delta = parts.length === 1 ? parts[0] : concat(parts, -1);
  if (!opts.gelu) {
    return linear(x, weight, bias, { residual: opts.residual ? opts.residual.add(delta) : delta });
  }
  const activated = linear(x, weight, bias, { residual: delta }).gelu();
  return opts.residual ? activated.add(opts.residual) : activated;
}
