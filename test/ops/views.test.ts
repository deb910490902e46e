// Gradient checks of the shape ops (engine/ops/views.ts); their forward is checked in test/engine/views.test.ts.

import { beforeAll, describe, it } from 'vitest';
import { concat, type Device } from '../../engine/node.js';
import { getDevice, permuteCpu } from '../helpers.js';
import { gradCheck } from '../gradcheck.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

describe('gradient checks: shape ops', () => {
  const shape = [2, 3, 4];
  it('reshape, permute, transpose', async () => {
    await gradCheck(device, {
      name: 'permute-reshape',
      inputs: [{ shape }],
      gpu: ([x]) => x.permute([2, 0, 1]).reshape([4, 6]).transpose().mul(x.reshape([6, 4])),
      cpu: ([x]) => {
        const p = permuteCpu(x, shape, [2, 0, 1]); // [4, 2, 3] -> [4, 6]
        const t = permuteCpu(p, [4, 6], [1, 0]); // [6, 4]
        return t.map((v, i) => v * x[i]);
      },
    });
  });

  it('slice, narrow, expand, squeeze, unsqueeze, contiguous', async () => {
    await gradCheck(device, {
      name: 'views',
      inputs: [{ shape }, { shape: [3, 1] }],
      gpu: ([x, b]) => x.slice([0, 1, 1], [2, 3, 4]).add(b.narrow(0, 1, 2).unsqueeze(0).expand([2, 2, 3])).squeeze().contiguous(),
      cpu: ([x, b]) => {
        const out: number[] = [];
        for (let i = 0; i < 2; i++) for (let j = 1; j < 3; j++) for (let k = 1; k < 4; k++) out.push(x[i * 12 + j * 4 + k] + b[j]);
        return out;
      },
    });
  });

  it('concat', async () => {
    await gradCheck(device, {
      name: 'concat',
      inputs: [{ shape: [2, 3] }, { shape: [2, 1] }, { shape: [3, 2] }],
      gpu: ([a, b, c]) => concat([a, b, c.transpose()], 1),
      cpu: ([a, b, c]) => {
        const out: number[] = [];
        for (let i = 0; i < 2; i++) {
          for (let j = 0; j < 3; j++) out.push(a[i * 3 + j]);
          out.push(b[i]);
          for (let j = 0; j < 3; j++) out.push(c[j * 2 + i]);
        }
        return out;
      },
    });
  });
});
