// The heat map's attention against a CPU reference: the last block's CLS row of softmax(Q Kᵀ / √d)
// recomputed in plain JavaScript from the block's input tokens and weights read back from the device,
// for a model with registers (the patch tokens start after them). Plus the resize to an image's size.

import { describe, expect, it } from 'vitest';
import { noGrad } from '../../engine/autograd.js';
import { attentionMap, lastBlockClsAttention, upsampleMap } from '../../models/attention-map.js';
import { presetConfig, VisionTransformer } from '../../models/vit.js';
import { expectClose, getDevice, seededValues } from '../helpers.js';

function layerNormCpu(x: Float32Array, n: number, d: number, g: Float32Array, b: Float32Array, eps: number): Float32Array {
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    let mean = 0;
    for (let j = 0; j < d; j++) mean += x[i * d + j] / d;
    let v = 0;
    for (let j = 0; j < d; j++) v += (x[i * d + j] - mean) ** 2 / d;
    for (let j = 0; j < d; j++) out[i * d + j] = ((x[i * d + j] - mean) / Math.sqrt(v + eps)) * g[j] + b[j];
  }
  return out;
}

describe('attention map', () => {
  it('equals a CPU recomputation of the last block\'s CLS attention (with register tokens)', async () => {
    const device = await getDevice();
    const config = presetConfig('vit-tiny-test', { registers: 2, labels: 3, depth: 3 });
    const model = new VisionTransformer(device, config, { seed: 5 });
    try {
      const s = config.imageSize;
      const image = seededValues(3 * s * s, 7, 0, 1);
      const input = device.tensor(image, [1, 3, s, s]);
      const last = config.depth - 1;
      const tokens = await noGrad(() => model.tokens(input, last)).data();
      const read = async (n: string) => model.param(n).data();
      const d = config.width;
      const n = tokens.length / d;
      const h = layerNormCpu(tokens, n, d, await read(`blocks.${last}.norm1.weight`), await read(`blocks.${last}.norm1.bias`), config.eps);
      const w = await read(`blocks.${last}.attn.qkv.weight`); // [3D, D]
      const bias = await read(`blocks.${last}.attn.qkv.bias`);
      const proj = (row: number, out: number) => {
        let acc = bias[out];
        for (let j = 0; j < d; j++) acc += h[row * d + j] * w[out * d + j];
        return acc;
      };
      const dh = d / config.heads;
      const want = new Float32Array(config.heads * n);
      for (let hd = 0; hd < config.heads; hd++) {
        const q = Array.from({ length: dh }, (_, e) => proj(0, hd * dh + e));
        const scores = Array.from({ length: n }, (_, t) => q.reduce((acc, qe, e) => acc + qe * proj(t, d + hd * dh + e), 0) / Math.sqrt(dh));
        const top = Math.max(...scores);
        const ex = scores.map((v) => Math.exp(v - top));
        const sum = ex.reduce((a, b) => a + b, 0);
        ex.forEach((v, t) => (want[hd * n + t] = v / sum));
      }
      const got = noGrad(() => lastBlockClsAttention(model, input));
      expectClose(await got.data(), want, { atol: 1e-5, rtol: 1e-4 }, 'CLS attention');
      got.dispose();

      const map = await attentionMap(model, image);
      const patches = (s / config.patchSize) ** 2;
      expect([map.rows, map.cols]).toEqual([s / config.patchSize, s / config.patchSize]);
      const mean = Array.from({ length: patches }, (_, p) => Array.from({ length: config.heads }, (_, hd) => want[hd * n + 1 + config.registers + p]).reduce((a, b) => a + b) / config.heads);
      expectClose(map.grid, mean, { atol: 1e-5, rtol: 1e-4 }, 'patch map');
      input.dispose();
    } finally {
      model.dispose();
    }
  });

  it('resizes to the image\'s size, stretched to [0, 1]; a constant map stays 0', () => {
    const map = { rows: 2, cols: 2, grid: Float32Array.from([0.1, 0.2, 0.3, 0.4]), perHead: new Float32Array(4) };
    const up = upsampleMap(map, 5, 3);
    expect(up).toHaveLength(15);
    expect(Math.min(...up)).toBeCloseTo(0, 6);
    expect(Math.max(...up)).toBeCloseTo(1, 6);
    expect(up[0]).toBeLessThan(up[14]); // top-left patch is the smallest, bottom-right the largest
    expect(upsampleMap({ ...map, grid: new Float32Array(4).fill(0.25) }, 4, 4).every((v) => v === 0)).toBe(true);
  });
});
