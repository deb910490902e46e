// Gradient check of the fused attention op (engine/ops/attention.ts); the kernels against their CPU references are in test/kernels/attention.test.ts.

import { beforeAll, describe, it } from 'vitest';
import { type Device } from '../../engine/node.js';
import { getDevice, permuteCpu } from '../helpers.js';
import { gradCheck } from '../gradcheck.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

describe('gradient checks: fused attention', () => {
  it('attention(q, k, v) on strided views', async () => {
    const { attention } = await import('../../engine/node.js');
    const { attentionCpu } = await import('../../kernels/attention.js');
    const [b, h, n, d] = [1, 2, 5, 8];
    await gradCheck(device, {
      name: 'attention',
      // q arrives as a permuted view, as in the ViT (qkv reshaped and permuted).
      inputs: [{ shape: [b, n, h, d] }, { shape: [b, h, n, d] }, { shape: [b, h, n, d] }],
      gpu: ([q, k, v]) => attention(q.permute([0, 2, 1, 3]), k, v),
      cpu: ([q, k, v]) => attentionCpu(permuteCpu(q, [b, n, h, d], [0, 2, 1, 3]), k, v, b, h, n, d, 1 / Math.sqrt(d)).out,
    });
  });
});
