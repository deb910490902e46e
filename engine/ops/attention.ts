// Fused scaled-dot-product attention: softmax(q·kᵀ·scale)·v for q, k, v [B, H, N, D]. The forward
// never materializes the N×N scores (online softmax) and saves the per-row log-sum-exp; the backward
// recomputes the scores from it (flash-attention style). Kernels in kernels/attention.ts.

import type { Tensor } from '../tensor.js';
import { needsGrad, noGrad, record } from '../autograd.js';
import { attentionBackward, attentionForward } from '../../kernels/attention.js';
import { castToHalf } from '../../kernels/cast.js';
import { currentPrecision } from '../precision.js';

/**
 * In mixed precision (engine/precision.ts) q, k and v are cast to f16, which the kernels read and
 * backward keeps (half the bytes); scores, softmax statistics, the output and the gradients stay f32.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, scale = 1 / Math.sqrt(q.shape[q.rank - 1])): Tensor {
  const mixed = currentPrecision() === 'mixed';
  const [qi, ki, vi] = mixed ? noGrad(() => [q, k, v].map(castToHalf)) : [q, k, v];
  const { out, lse } = noGrad(() => attentionForward(qi, ki, vi, scale));
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
