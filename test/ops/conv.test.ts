// patchEmbed (engine/ops/conv.ts, im2col views + linear): forward against a direct convolution, and its gradient check.

import { beforeAll, describe, expect, it } from 'vitest';
import { type Device } from '../../engine/node.js';
import { expectClose, getDevice, seededValues } from '../helpers.js';
import { gradCheck } from '../gradcheck.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

describe('patchEmbed', () => {
  it('forward matches a direct strided convolution, with a cropped remainder', async () => {
    const { patchEmbed, patchEmbedCpu } = await import('../../engine/node.js');
    const [b, c, h, w, d, p] = [2, 3, 30, 34, 5, 8]; // 3×4 patches; 6 rows and 2 columns ignored
    const img = seededValues(b * c * h * w, 9);
    const wt = seededValues(d * c * p * p, 10);
    const bias = seededValues(d, 11);
    const y = patchEmbed(device.tensor(img, [b, c, h, w]), device.tensor(wt, [d, c, p, p]), device.tensor(bias), p);
    expect(y.shape).toEqual([2, 12, 5]);
    expectClose(await y.data(), patchEmbedCpu(img, wt, bias, b, c, h, w, d, p), { atol: 1e-5, rtol: 1e-5 });
  });

  it('gradient check', async () => {
    const { patchEmbed, patchEmbedCpu } = await import('../../engine/node.js');
    await gradCheck(device, {
      name: 'patchEmbed',
      inputs: [{ shape: [1, 2, 5, 4] }, { shape: [3, 2, 2, 2] }, { shape: [3] }],
      gpu: ([x, w, b]) => patchEmbed(x, w, b, 2),
      cpu: ([x, w, b]) => patchEmbedCpu(x, w, b, 1, 2, 5, 4, 3, 2),
    });
  });
});
