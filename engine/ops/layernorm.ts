// LayerNorm over the last axis, forward and backward; kernels in kernels/layernorm.ts.

import type { Tensor } from '../tensor.js';
import { ShapeError } from '../errors.js';
import { needsGrad, recomputable, record } from '../autograd.js';
import { shapeStr } from '../shape.js';
import { contiguousInput } from '../../kernels/elementwise.js';
import { layerNormBackward, layerNormForward } from '../../kernels/layernorm.js';

/** LayerNorm over the last axis with affine γ, β of shape [D]. */
export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps = 1e-5): Tensor {
  for (const t of [x, gamma, beta]) t.assertAlive('layerNorm');
  if (x.rank === 0) throw new ShapeError('layerNorm: needs at least one axis');
  const d = x.shape[x.rank - 1];
  if (gamma.shape.join() !== `${d}` || beta.shape.join() !== `${d}`) {
    throw new ShapeError(`layerNorm: γ ${shapeStr(gamma.shape)} and β ${shapeStr(beta.shape)} must be [${d}] for input ${shapeStr(x.shape)}`);
  }
  // The row-major copies (views when x and γ already are) are what the backward reads again.
  const xc = contiguousInput(x, 'zero');
  const gc = contiguousInput(gamma, 'zero');
  const { y, stats } = layerNormForward(xc, gc, beta, eps);
  if (needsGrad(x, gamma, beta)) {
    record(y, 'layerNorm', [x, gamma, beta], [xc, gc, stats, beta], (g, [xs, gs, st]) => {
      const { dx, dgamma, dbeta } = layerNormBackward(g, xs, gs, st);
      return [dx, dgamma, dbeta];
    });
    // A later op that saves y (the linear after it) holds x, γ and β instead and normalizes again.
    recomputable(y, [0, 1, 3], ([xs, gs, bs]) => layerNormForward(xs, gs, bs, eps).y);
  }
  xc.dispose();
  gc.dispose();
  stats.dispose();
  return y;
}
