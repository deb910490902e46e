// Gradient check of layerNorm (engine/ops/layernorm.ts) and its shape errors.

import { beforeAll, describe, expect, it } from 'vitest';
import { layerNormCpu } from '../../kernels/layernorm.js';
import { layerNorm, type Device } from '../../engine/node.js';
import { getDevice } from '../helpers.js';
import { gradCheck } from '../gradcheck.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

describe('layerNorm', () => {
  // D = 11 takes the scalar kernels, D = 12 the vec4 ones.
  it.each([11, 12])('gradient check (dx, dγ, dβ) on a strided input, D = %i', async (d) => {
    const rows = 6;
    await gradCheck(device, {
      name: 'layerNorm',
      inputs: [{ shape: [d, rows] }, { shape: [d], lo: 0.5, hi: 1.5 }, { shape: [d] }],
      gpu: ([x, g, b]) => layerNorm(x.transpose(), g, b, 1e-5),
      cpu: ([x, g, b]) => {
        const xt = new Float64Array(rows * d);
        for (let i = 0; i < rows; i++) for (let j = 0; j < d; j++) xt[i * d + j] = x[j * rows + i];
        return layerNormCpu(xt, g, b, rows, d, 1e-5).y;
      },
      atol: 3e-5,
    });
  });

  it('names the mismatched parameter shapes', () => {
    expect(() => layerNorm(device.zeros([2, 4]), device.ones([3]), device.zeros([4]))).toThrow(/γ \[3\]/);
  });
});
