// Fused scaled-dot-product attention: softmax(q·kᵀ·scale)·v for q, k, v [B, H, N, D]. The forward
// never materializes the N×N scores (online softmax) and saves the per-row log-sum-exp; the backward
// recomputes the scores from it (flash-attention style). Kernels in kernels/attention.ts.

import type { Tensor } from '../tensor.js';
import { needsGrad, noGrad, record } from '../autograd.js';
import { attentionBackward, attentionForward } from '../../kernels/attention.js';

export function attention(q: Tensor, k: Tensor, v: Tensor, scale = 1 / Math.sqrt(q.shape[q.rank - 1])): Tensor {
  const { out, lse } = noGrad(() => attentionForward(q, k, v, scale));
  if (needsGrad(q, k, v)) {
    record(out, 'attention', [q, k, v], [q, k, v, out, lse], (g, [qs, ks, vs, os, ls]) => {
      const { dq, dk, dv } = attentionBackward(qs, ks, vs, os, ls, g, scale);
      return [dq, dk, dv];
    });
  }
  lse.dispose();
  return out;
}
