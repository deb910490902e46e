// Batched matmul with NumPy semantics: [..., M, K] · [..., K, N] -> [..., M, N], batch axes broadcast,
// 1-D operands promoted as in NumPy. Transposed views are read in place through their strides.

import { Tensor } from '../tensor.js';
import { ShapeError } from '../errors.js';
import { broadcastShapes, broadcastStrides, collapseDims, shapeStr, sizeOf } from '../shape.js';
import { matmulKernel, matmulParams, matmulWorkgroups, type MatmulOperand } from '../../kernels/matmul.js';
import { contiguous, expand, unsqueeze, squeeze } from './views.js';

/** Batch strides of `t` (rank >= 2) over `batch`, as one stride, or null when they don't flatten. */
function flatBatchStride(t: Tensor, batch: readonly number[]): number | null {
  const st = broadcastStrides(t.shape.slice(0, -2), t.strides.slice(0, -2), batch, 'matmul');
  const c = collapseDims(batch, [st]);
  if (c.shape.length === 0) return 0;
  if (c.shape.length === 1) return c.strides[0][0];
  return null;
}

export function matmul(a: Tensor, b: Tensor): Tensor {
  a.assertAlive('matmul');
  b.assertAlive('matmul');
  if (a.rank === 0 || b.rank === 0) throw new ShapeError('matmul: operands must have at least one axis');
  if (a.device !== b.device) throw new ShapeError('matmul: operands live on different devices');
  const disposeAfter: Tensor[] = [];
  const A = a.rank === 1 ? (disposeAfter.push(unsqueeze(a, 0)), disposeAfter[disposeAfter.length - 1]) : a;
  const B = b.rank === 1 ? (disposeAfter.push(unsqueeze(b, 1)), disposeAfter[disposeAfter.length - 1]) : b;
  try {
    const [m, k] = A.shape.slice(-2);
    const [k2, n] = B.shape.slice(-2);
    if (k !== k2) throw new ShapeError(`matmul: inner dimensions differ: ${shapeStr(a.shape)} · ${shapeStr(b.shape)}`);
    const batch = broadcastShapes(A.shape.slice(0, -2), B.shape.slice(0, -2), 'matmul');
    const batchSize = sizeOf(batch);
    const out = Tensor.empty(a.device, [...batch, m, n]);
    if (out.size > 0) {
      const operand = (t: Tensor): [MatmulOperand, Tensor] => {
        let src = t;
        let bs = flatBatchStride(t, batch);
        if (bs === null) {
          const e = expand(t, [...batch, ...t.shape.slice(-2)]);
          src = contiguous(e);
          e.dispose();
          disposeAfter.push(src);
          bs = t.shape[t.rank - 2] * t.shape[t.rank - 1];
        }
        const r = src.rank;
        return [{ offset: src.offset, batchStride: bs, rowStride: src.strides[r - 2], colStride: src.strides[r - 1] }, src];
      };
      const [opA, srcA] = operand(A);
      const [opB, srcB] = operand(B);
      a.device.dispatch(
        matmulKernel(),
        [out.storage.buffer, srcA.storage.buffer, srcB.storage.buffer],
        matmulParams(m, n, k, batchSize, opA, opB),
        matmulWorkgroups(m, n, batchSize),
      );
    }
    if (a.rank === 1 || b.rank === 1) {
      let r = out;
      if (a.rank === 1) r = squeeze(r, -2);
      if (b.rank === 1) {
        const prev = r;
        r = squeeze(r, -1);
        if (prev !== out) prev.dispose();
      }
      out.dispose();
      return r;
    }
    return out;
  } finally {
    for (const t of disposeAfter) t.dispose();
  }
}
