// Differentiable matrix products: matmul (NumPy semantics) and linear (x·Wᵀ + b, optionally GELU and a
// residual add fused into the matmul's epilogue). The forward kernels are in kernels/matmul.ts via
// engine/ops/matmul.ts; the backward rules are here, next to the ops.

import type { Tensor } from '../tensor.js';
import { needsGrad, noGrad, record } from '../autograd.js';
import { ShapeError } from '../errors.js';
import { shapeStr } from '../shape.js';
import { matmul as matmulForward } from './matmul.js';
import { sumToShape } from './elementwise.js';

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

/** y = act(x·Wᵀ + b) + residual for x [..., in], W [out, in] (PyTorch's layout), b [out]. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: LinearOptions = {}): Tensor {
  if (weight.rank !== 2) throw new ShapeError(`linear: weight must be [out, in], got ${shapeStr(weight.shape)}`);
  const [outF, inF] = weight.shape;
  if (x.shape[x.rank - 1] !== inF) {
    throw new ShapeError(`linear: input ${shapeStr(x.shape)} does not end in ${inF} (weight ${shapeStr(weight.shape)})`);
  }
  if (bias && bias.shape.join() !== `${outF}`) throw new ShapeError(`linear: bias ${shapeStr(bias.shape)} must be [${outF}]`);
  let y = matmul(x, weight.transpose());
  if (bias) y = y.add(bias);
  if (opts.gelu) y = y.gelu();
  if (opts.residual) y = y.add(opts.residual);
  return y;
}
