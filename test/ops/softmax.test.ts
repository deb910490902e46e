// Gradient check of softmax (engine/ops/softmax.ts).

import { beforeAll, describe, it } from 'vitest';
import { softmaxCpu } from '../../kernels/softmax.js';
import { softmax, type Device } from '../../engine/node.js';
import { getDevice } from '../helpers.js';
import { gradCheck } from '../gradcheck.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

describe('softmax', () => {
  it('gradient check', async () => {
    await gradCheck(device, {
      name: 'softmax',
      inputs: [{ shape: [2, 3, 5], lo: -3, hi: 3 }],
      gpu: ([x]) => softmax(x),
      cpu: ([x]) => softmaxCpu(x, 6, 5),
    });
  });
});
