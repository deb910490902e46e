// Gradient check of the fused attention op (engine/ops/attention.ts); the kernels against their CPU references are in test/kernels/attention.test.ts.

import { beforeAll, describe, expect, it } from 'vitest';
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

describe('attentionQkv: heads read from a fused qkv projection', () => {
  // qkv [B, N, 3·H·D] -> q, k, v heads [B, H, N, D], as the ViT lays them out.
  const split = (x: Float64Array, b: number, n: number, h: number, d: number) =>
    [0, 1, 2].map((part) => {
      const out = new Float64Array(b * h * n * d);
      for (let bi = 0; bi < b; bi++) for (let hi = 0; hi < h; hi++) for (let ni = 0; ni < n; ni++) for (let di = 0; di < d; di++) {
        out[((bi * h + hi) * n + ni) * d + di] = x[(bi * n + ni) * 3 * h * d + part * h * d + hi * d + di];
      }
      return out;
    });

  it('gradient check against the CPU reference', async () => {
    const { attentionQkv } = await import('../../engine/node.js');
    const { attentionCpu } = await import('../../kernels/attention.js');
    const [b, h, n, d] = [2, 2, 5, 4];
    await gradCheck(device, {
      name: 'attentionQkv',
      inputs: [{ shape: [b, n, 3 * h * d] }],
      gpu: ([qkv]) => attentionQkv(qkv, h),
      cpu: ([qkv]) => {
        const [q, k, v] = split(qkv, b, n, h, d);
        return permuteCpu(attentionCpu(q, k, v, b, h, n, d, 1 / Math.sqrt(d)).out, [b, h, n, d], [0, 2, 1, 3]);
      },
    });
  });

  it('is bit-identical to attention() on the permuted heads, forward and backward, with no copies', async () => {
    const { attention, attentionQkv, tidy } = await import('../../engine/node.js');
    const [b, h, n, d] = [2, 3, 13, 8];
    const values = Float32Array.from({ length: b * n * 3 * h * d }, (_, i) => Math.sin(i * 0.37) * 0.8);
    const upstream = Float32Array.from({ length: b * n * h * d }, (_, i) => Math.cos(i * 0.11));
    const run = async (fused: boolean) => {
      const x = device.tensor(values, [b, n, 3 * h * d]).requireGrad();
      const g = device.tensor(upstream, [b, n, h * d]);
      const out = tidy(() => {
        if (fused) return attentionQkv(x, h);
        const heads = x.reshape([b, n, 3, h, d]).permute([2, 0, 3, 1, 4]);
        const [q, k, v] = [0, 1, 2].map((i) => heads.narrow(0, i, 1).squeeze(0));
        return attention(q, k, v).permute([0, 2, 1, 3]).reshape([b, n, h * d]);
      });
      out.backward(g);
      const result = [Array.from(await out.data()), Array.from(await x.grad!.data())];
      for (const t of [x, g, out]) t.dispose();
      return { result };
    };
    const fused = await run(true);
    const composed = await run(false);
    expect(fused.result[0]).toEqual(composed.result[0]);
    expect(fused.result[1]).toEqual(composed.result[1]);
  });

  it('writes its output tokens-major and its backward without copies or fills', async () => {
    const { attentionQkv } = await import('../../engine/node.js');
    const [b, h, n, d] = [1, 2, 9, 8];
    const x = device.tensor(Float32Array.from({ length: b * n * 3 * h * d }, (_, i) => (i % 7) * 0.1), [b, n, 3 * h * d]).requireGrad();
    const out = attentionQkv(x, h);
    expect(out.shape).toEqual([b, n, h * d]);
    expect(out.isContiguous).toBe(true);
    const g = device.tensor(Float32Array.from({ length: b * n * h * d }, () => 1), [b, n, h * d]);
    const session = device.profile({ timing: 'cpu' });
    out.backward(g);
    const kernels = (await session.stop()).kernels.map((k) => k.name);
    // The row statistics, dQ and dK·dV kernels write the gradient of qkv: nothing else runs.
    expect(kernels.sort()).toEqual(['attention_bwd_dkv', 'attention_bwd_dq', 'attention_stats'].map((p) => kernels.find((k) => k.startsWith(p))).sort());
    expect(kernels.length).toBe(3);
    g.dispose();
    expect(() => attentionQkv(device.zeros([1, 4, 10]), 2)).toThrow(/3·2·D/);
    for (const t of [x, out]) t.dispose();
  });
});
