// Differentiable matrix products: matmul (NumPy semantics) and linear (x·Wᵀ + b, optionally GELU and a
// residual add fused into the matmul's epilogue). The forward kernels are in kernels/matmul.ts (through
// engine/ops/matmul.ts for plain products); the backward rules are here, next to the ops.

import type { Tensor } from '../tensor.js';
import { needsGrad, noGrad, record } from '../autograd.js';
import { ShapeError } from '../errors.js';
import { shapeStr } from '../shape.js';
import { matmul as matmulForward } from './matmul.js';
import { elementwise, sumToShape } from './elementwise.js';
import { matmulFused } from '../../kernels/matmul.js';

/** [..., M, K] · [..., K, N] with broadcast batch axes; 1-D operands promoted as in NumPy. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (!needsGrad(a, b)) return matmulForward(a, b);
  if (a.rank === 1) return matmul(a.unsqueeze(0), b).squeeze(-2);
  if (b.rank === 1) return matmul(a, b.unsqueeze(1)).squeeze(-1);
  const out = noGrad(() => matmulForward(a, b));
  const aShape = a.shape;
  const bShape = b.shape;
  const needA = a.requiresGrad;
  const needB = b.requiresGrad;
  return record(out, 'matmul', [a, b], [a, b], (g, [as, bs]) => [
    // dA = g·Bᵀ, dB = Aᵀ·g (transposes are strided views, read in place), summed over broadcast batch axes.
    needA ? sumToShape(matmulForward(g, bs.transpose()), aShape) : null,
    needB ? sumToShape(matmulForward(as.transpose(), g), bShape) : null,
  ]);
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
  const gelu = Boolean(opts.gelu);
  const grad = needsGrad(x, weight, bias, residual);
  const { out, pre } = noGrad(() =>
    matmulFused(x, weight.transpose(), { bias: bias ?? undefined, gelu, residual, preActivation: gelu && grad }),
  );
  if (!grad) return out;
  const inputs = [x, weight, ...(bias ? [bias] : []), ...(residual ? [residual] : [])];
  const rows = x.size / inF;
  return record(out, 'linear', inputs, pre ? [x, weight, pre] : [x, weight], (g, [xs, ws, zs]) => {
    // z = x·Wᵀ + b, y = act(z) + r: dz = act'(z)·g, dx = dz·W, dW = dzᵀ·x (over all rows), db = Σ dz, dr = g.
    const dz = zs ? elementwise('geluGrad', [zs, g]) : g;
    const dz2 = dz.reshape([rows, outF]);
    const grads: (Tensor | null)[] = [
      x.requiresGrad ? matmulForward(dz, ws) : null,
      weight.requiresGrad ? matmulForward(dz2.transpose(), xs.reshape([rows, inF])) : null,
    ];
    if (bias) grads.push(bias.requiresGrad ? dz2.sum(0) : null);
    if (residual) grads.push(residual.requiresGrad ? g : null);
    return grads;
  });
}
