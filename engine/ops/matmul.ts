// Batched matmul with NumPy semantics: [..., M, K] · [..., K, N] -> [..., M, N], batch axes broadcast,
// 1-D operands promoted as in NumPy. Transposed views are read in place through their strides; the
// kernels, their per-adapter variants and the fused epilogue are in kernels/matmul.ts.

import type { Tensor } from '../tensor.js';
import { ShapeError } from '../errors.js';
import { matmulFused } from '../../kernels/matmul.js';
import { unsqueeze, squeeze } from './views.js';

export function matmul(a: Tensor, b: Tensor): Tensor {
  a.assertAlive('matmul');
  b.assertAlive('matmul');
  if (a.rank === 0 || b.rank === 0) throw new ShapeError('matmul: operands must have at least one axis');
  if (a.rank >= 2 && b.rank >= 2) return matmulFused(a, b).out;
  const A = a.rank === 1 ? unsqueeze(a, 0) : a;
  const B = b.rank === 1 ? unsqueeze(b, 1) : b;
  try {
    const out = matmulFused(A, B).out;
    let r = out;
    if (a.rank === 1) r = squeeze(r, -2);
    if (b.rank === 1) {
      const prev = r;
      r = squeeze(r, -1);
      if (prev !== out) prev.dispose();
    }
    out.dispose();
    return r;
  } finally {
    if (A !== a) A.dispose();
    if (B !== b) B.dispose();
  }
}
