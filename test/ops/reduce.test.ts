// Gradient checks of the reductions (engine/ops/reduce.ts).

import { beforeAll, describe, expect, it } from 'vitest';
import { reduceCpu } from '../../kernels/reduce.js';
import { type Device } from '../../engine/node.js';
import { getDevice } from '../helpers.js';
import { gradCheck } from '../gradcheck.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

describe('gradient checks: reductions', () => {
  const shape = [3, 4, 5];
  for (const op of ['sum', 'mean', 'max', 'min'] as const) {
    it.each([[[0]], [[1, 2]], [[0, 1, 2]], [[2]]])(`${op} over %j`, async (axes) => {
      await gradCheck(device, {
        name: `${op}${JSON.stringify(axes)}`,
        inputs: [{ shape }],
        gpu: ([x]) => x[op](axes),
        cpu: ([x]) => {
          const r = reduceCpu(op === 'mean' ? 'sum' : op, x, shape, axes);
          const n = axes.reduce((a, i) => a * shape[i], 1);
          return op === 'mean' ? r.map((v) => v / n) : r;
        },
      });
    });
  }

  it('max splits the gradient among ties', async () => {
    const x = device.tensor([1, 3, 3, 2]).requireGrad();
    x.max().backward();
    expect(Array.from(await x.grad!.data())).toEqual([0, 0.5, 0.5, 0]);
  });
});
