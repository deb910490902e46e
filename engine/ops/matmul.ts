// Differentiable matrix products: matmul (NumPy semantics) and linear (x·Wᵀ + b, optionally GELU and a
// residual add fused into the matmul's epilogue), each forward with its backward rule under it. The
// kernels, their per-adapter variants and the fused epilogue are in kernels/matmul.ts.

import type { Tensor } from '../tensor.js';
import { needsGrad, noGrad, recomputable, record } from '../autograd.js';
import { ShapeError } from '../errors.js';
import { shapeStr } from '../shape.js';
import { elementwise, sumToShape } from './elementwise.js';
import { matmulFused } from '../../kernels/matmul.js';
import { currentPrecision } from '../precision.js';
import { linearMixed } from './matmul-mixed.js';

/**
 * [..., M, K] · [..., K, N] -> [..., M, N] with broadcast batch axes; 1-D operands promoted as in
 * NumPy. Transposed views are read in place through their strides.
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  a.assertAlive('matmul');
  b.assertAlive('matmul');
  if (a.rank === 0 || b.rank === 0) throw new ShapeError('matmul: operands must have at least one axis');
  if (a.rank === 1 || b.rank === 1) return promoted(a, b);
  const out = noGrad(() => matmulFused(a, b).out);
  if (!needsGrad(a, b)) return out;
  const aShape = a.shape;
  const bShape = b.shape;
  const needA = a.requiresGrad;
  const needB = b.requiresGrad;
  return record(out, 'matmul', [a, b], [a, b], (g, [as, bs]) => [
    // dA = g·Bᵀ, dB = Aᵀ·g (transposes are strided views, read in place), summed over broadcast batch axes.
    needA ? sumToShape(matmul(g, bs.transpose()), aShape) : null,
    needB ? sumToShape(matmul(as.transpose(), g), bShape) : null,
  ]);
}

/** matmul with 1-D operands made matrices ([K] -> [1, K] on the left, [K, 1] on the right) and squeezed back. */
function promoted(a: Tensor, b: Tensor): Tensor {
  const A = a.rank === 1 ? a.unsqueeze(0) : a;
  const B = b.rank === 1 ? b.unsqueeze(1) : b;
  const product = matmul(A, B);
  const rowSqueezed = a.rank === 1 ? product.squeeze(-2) : product;
  const out = b.rank === 1 ? rowSqueezed.squeeze(-1) : rowSqueezed;
  // The intermediate views can go: views keep the storage, and graph nodes stay while a later node uses them.
  for (const t of new Set([A, B, product, rowSqueezed])) if (t !== a && t !== b && t !== out) t.dispose();
  return out;
}

export interface LinearOptions {
  /** Apply the exact (erf) GELU after the bias. */
  gelu?: boolean;
  /** Added after the activation: y = act(x·Wᵀ + b) + residual. */
  residual?: Tensor;
}

/**
 * y = act(x·Wᵀ + b) + residual for x [..., in], W [out, in] (PyTorch's layout), b [out]: one matmul
 * kernel with bias, GELU and residual in its epilogue; W is read transposed in place.
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: LinearOptions = {}): Tensor {
  if (weight.rank !== 2) throw new ShapeError(`linear: weight must be [out, in], got ${shapeStr(weight.shape)}`);
  const [outF, inF] = weight.shape;
  if (x.rank === 0 || x.shape[x.rank - 1] !== inF) {
    throw new ShapeError(`linear: input ${shapeStr(x.shape)} does not end in ${inF} (weight ${shapeStr(weight.shape)})`);
  }
  if (bias && bias.shape.join() !== `${outF}`) throw new ShapeError(`linear: bias ${shapeStr(bias.shape)} must be [${outF}]`);
  const outShape = [...x.shape.slice(0, -1), outF];
  const residual = opts.residual;
  if (residual && residual.shape.join() !== outShape.join()) {
    throw new ShapeError(`linear: residual ${shapeStr(residual.shape)} must match the output ${shapeStr(outShape)}`);
  }
  if (currentPrecision() === 'mixed') return linearMixed(x, weight, bias, opts);
  const gelu = Boolean(opts.gelu);
  const grad = needsGrad(x, weight, bias, residual);
  const { out, pre } = noGrad(() =>
    matmulFused(x, weight.transpose(), { bias: bias ?? undefined, gelu, residual, preActivation: gelu && grad }),
  );
  if (!grad) return out;
  const inputs = [x, weight, ...(bias ? [bias] : []), ...(residual ? [residual] : [])];
  const rows = x.size / inF;
  record(out, 'linear', inputs, pre ? [x, weight, pre] : [x, weight], (g, [xs, ws, zs]) => {
    // z = x·Wᵀ + b, y = act(z) + r: dz = act'(z)·g, dx = dz·W, dW = dzᵀ·x (over all rows), db = Σ dz, dr = g.
    const dz = zs ? elementwise('geluGrad', [zs, g]) : g;
    const dz2 = dz.reshape([rows, outF]);
    const grads: (Tensor | null)[] = [
      x.requiresGrad ? matmul(dz, ws) : null,
      weight.requiresGrad ? matmul(dz2.transpose(), xs.reshape([rows, inF])) : null,
    ];
    if (bias) grads.push(bias.requiresGrad ? dz2.sum(0) : null);
    if (residual) grads.push(residual.requiresGrad ? g : null);
    return grads;
  });
  // A later op that saves GELU's output (fc2) holds the pre-activation instead and recomputes it.
  if (pre && !residual) recomputable(out, [2], ([z]) => elementwise('gelu', [z]));
  pre?.dispose();
  return out;
}
