// Fused scaled-dot-product attention: softmax(q·kᵀ·scale)·v for q, k, v [B, H, N, D]. The forward
// never materializes the N×N scores (online softmax) and saves the per-row log-sum-exp; the backward
// recomputes the scores from it (flash-attention style). Kernels in kernels/attention.ts; they read
// and write strided heads in place, so neither op copies q, k, v or the output.

import { Tensor } from '../tensor.js';
import { needsGrad, noGrad, record } from '../autograd.js';
import { ShapeError } from '../errors.js';
import { shapeStr } from '../shape.js';
import { attentionBackward, attentionForward } from '../../kernels/attention.js';
import { contiguousInput } from '../../kernels/elementwise.js';
import { castToHalf } from '../../kernels/cast.js';
import { currentPrecision } from '../precision.js';

/**
 * `t` [B, N, W] (last axis contiguous) seen as heads [B, H, N, D] of its columns
 * from..from + H·D: a view, no copy. The caller disposes it.
 */
function heads(t: Tensor, h: number, d: number, from: number): Tensor {
  const [b, n] = t.shape;
  const [sb, sn] = t.strides;
  return new Tensor(t.device, t.storage, [b, h, n, d], [b === 1 ? 0 : sb, d, n === 1 ? 0 : sn, 1], t.offset + from);
}

/** A new [B, N, H·D] tensor and its heads view [B, H, N, D] (tokens-major output: no permuting copy after). */
function tokensMajor(like: Tensor): { tokens: Tensor; view: Tensor } {
  const [b, h, n, d] = like.shape;
  const tokens = Tensor.empty(like.device, [b, n, h * d]);
  return { tokens, view: heads(tokens, h, d, 0) };
}

/**
 * softmax(q·kᵀ·scale)·v for q, k, v [B, H, N, D]. The result is [B, H, N, D] stored tokens-major
 * ([B, N, H, D] in memory), so `.permute([0, 2, 1, 3]).reshape([B, N, H·D])` is a view. In mixed
 * precision (engine/precision.ts) q, k and v are cast to f16, which the kernels read and backward keeps
 * (half the bytes); scores, softmax statistics, the output and the gradients stay f32.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, scale = 1 / Math.sqrt(q.shape[q.rank - 1])): Tensor {
  const mixed = currentPrecision() === 'mixed' && q.rank === 4;
  const [qi, ki, vi] = mixed ? noGrad(() => [q, k, v].map(castToHalf)) : [q, k, v];
  const { out, lse } = noGrad(() => {
    if (q.rank !== 4) return attentionForward(q, k, v, scale); // its own message
    const { tokens, view } = tokensMajor(q);
    tokens.dispose();
    return attentionForward(qi, ki, vi, scale, undefined, view);
  });
  if (needsGrad(q, k, v)) {
    record(out, mixed ? 'attention (mixed)' : 'attention', [q, k, v], [qi, ki, vi, out, lse], (g, [qs, ks, vs, os, ls]) => {
      const { dq, dk, dv } = attentionBackward(qs, ks, vs, os, ls, g, scale);
      return [dq, dk, dv];
    });
  }
  lse.dispose();
  if (mixed) for (const t of [qi, ki, vi]) t.dispose();
  return out;
}

/**
 * Multi-head self-attention on a fused projection: qkv [B, N, 3·H·D] (q, k, v of each token side by
 * side, heads within each, as a ViT's qkv linear layer writes them) -> [B, N, H·D]. The same numbers
 * as attention() on the heads, but q, k and v are read in place and the backward kernels write the
 * gradient of qkv into one buffer (no copies, no zero-filled slices summed).
 */
export function attentionQkv(qkv: Tensor, numHeads: number, scale?: number): Tensor {
  qkv.assertAlive('attentionQkv');
  if (qkv.rank !== 3 || qkv.shape[2] % (3 * numHeads) !== 0 || (qkv.shape[2] / (3 * numHeads)) % 4 !== 0) {
    throw new ShapeError(`attentionQkv: qkv must be [B, N, 3·${numHeads}·D] with D a multiple of 4, got ${shapeStr(qkv.shape)}`);
  }
  const width = qkv.shape[2] / 3;
  const d = width / numHeads;
  const s = scale ?? 1 / Math.sqrt(d);
  const views = (t: Tensor) => [0, 1, 2].map((i) => heads(t, numHeads, d, i * width));
  // Mixed precision: the heads are read from an f16 copy of the projection, which backward keeps.
  const mixed = currentPrecision() === 'mixed';
  const src = mixed ? noGrad(() => castToHalf(qkv)) : contiguousInput(qkv, 'vec4');
  const [q, k, v] = views(src);
  const { tokens, view } = tokensMajor(q);
  let lse: Tensor;
  try {
    lse = noGrad(() => attentionForward(q, k, v, s, undefined, view)).lse;
  } finally {
    for (const t of [q, k, v, view]) t.dispose();
  }
  if (needsGrad(qkv)) {
    record(tokens, mixed ? 'attentionQkv (mixed)' : 'attentionQkv', [qkv], [src, tokens, lse], (g, [xs, os, ls]) => {
      const gc = contiguousInput(g, 'vec4');
      const dqkv = Tensor.empty(g.device, [...xs.shape]);
      const [dq, dk, dv] = views(dqkv);
      const [qs, ks, vs] = views(xs);
      const [o, gh] = [os, gc].map((t) => heads(t, numHeads, d, 0));
      try {
        attentionBackward(qs, ks, vs, o, ls, gh, s, undefined, { dq, dk, dv });
      } finally {
        for (const t of [gc, dq, dk, dv, qs, ks, vs, o, gh]) t.dispose();
      }
      return [dqkv];
    });
  }
  src.dispose();
  lse.dispose();
  return tokens;
}
