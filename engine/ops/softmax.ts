// Softmax over the last axis, forward and backward; kernels in kernels/softmax.ts.

import type { Tensor } from '../tensor.js';
import { ShapeError } from '../errors.js';
import { needsGrad, record } from '../autograd.js';
import { softmaxBackward, softmaxForward } from '../../kernels/softmax.js';

/** Softmax over the last axis. */
export function softmax(x: Tensor): Tensor {
  x.assertAlive('softmax');
  if (x.rank === 0) throw new ShapeError('softmax: needs at least one axis');
  const y = softmaxForward(x);
  if (needsGrad(x)) record(y, 'softmax', [x], [y], (g, [ys]) => [softmaxBackward(ys, g)]);
  return y;
}
