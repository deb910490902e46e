import { beforeAll, describe, expect, it } from 'vitest';
import { layerNormCpu } from '../../kernels/layernorm.js';
import { softmaxCpu } from '../../kernels/softmax.js';
import { bceWithLogitsCpu } from '../../kernels/loss.js';
import { adamwCpu } from '../../kernels/adamw.js';
import { AdamW, bceWithLogits, gradNormScale, layerNorm, softmax, type Device } from '../../engine/node.js';
import { expectClose, getDevice, seededValues } from '../helpers.js';
import { gradCheck } from '../gradcheck.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

describe('layerNorm', () => {
  it.each([
    [7, 33, 1e-5],
    [197, 768, 1e-6],
    [3, 1, 1e-12],
    [5, 257, 1e-12],
  ])('forward [%i, %i] eps %d matches the CPU reference', async (rows, d, eps) => {
    // A large common offset checks the two-pass variance.
    const x = seededValues(rows * d, 1, 99, 101);
    const g = seededValues(d, 2, 0.5, 1.5);
    const b = seededValues(d, 3);
    const y = layerNorm(device.tensor(x, [rows, d]), device.tensor(g), device.tensor(b), eps);
    // f32 normalisation of values near 100 with unit spread: ~1e-5 relative error in x - mean.
    expectClose(await y.data(), layerNormCpu(x, g, b, rows, d, eps).y, { atol: 2e-4, rtol: 1e-4 });
  });

  it('gradient check (dx, dγ, dβ) on a strided input', async () => {
    const rows = 6;
    const d = 11;
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

describe('softmax', () => {
  it.each([[1, 1], [9, 197], [4, 1000], [3, 7]])('forward [%i, %i]', async (rows, d) => {
    const x = seededValues(rows * d, 4, -20, 20);
    const y = softmax(device.tensor(x, [rows, d]));
    expectClose(await y.data(), softmaxCpu(x, rows, d), { atol: 1e-7, rtol: 1e-5 });
  });

  it('gradient check', async () => {
    await gradCheck(device, {
      name: 'softmax',
      inputs: [{ shape: [2, 3, 5], lo: -3, hi: 3 }],
      gpu: ([x]) => softmax(x),
      cpu: ([x]) => softmaxCpu(x, 6, 5),
    });
  });
});

describe('bceWithLogits', () => {
  const n = 6;
  const labels = 5;
  const logits = Array.from(seededValues(n * labels, 5, -8, 8));
  logits[0] = 40; // far in the tails: the stable form must not overflow
  logits[1] = -40;
  const targets = Array.from(seededValues(n * labels, 6, 0, 1), (v) => (v > 0.6 ? 1 : 0));
  const posWeight = [1, 2.5, 0.4, 9, 1.7];
  const weight = Array.from(seededValues(n * labels, 7, 0, 1), (v) => (v > 0.2 ? 1 : 0));

  it('forward matches the CPU reference, with pos_weight and element weights', async () => {
    const loss = bceWithLogits(device.tensor(logits, [n, labels]), device.tensor(targets, [n, labels]), { posWeight: device.tensor(posWeight) });
    expectClose([await loss.item()], [bceWithLogitsCpu(logits, targets, posWeight)], { atol: 1e-6, rtol: 1e-5 });
    const wl = bceWithLogits(device.tensor(logits, [n, labels]), device.tensor(targets, [n, labels]), {
      posWeight: device.tensor(posWeight),
      weight: device.tensor(weight, [n, labels]),
    });
    expectClose([await wl.item()], [bceWithLogitsCpu(logits, targets, posWeight, weight)], { atol: 1e-6, rtol: 1e-5 });
  });

  it('gradient check', async () => {
    await gradCheck(device, {
      name: 'bceWithLogits',
      inputs: [{ shape: [n, labels], data: logits.map((v) => Math.max(-8, Math.min(8, v))) }, { shape: [n, labels], data: targets, grad: false }],
      gpu: ([x, y]) => bceWithLogits(x, y, { posWeight: device.tensor(posWeight), weight: device.tensor(weight, [n, labels]) }),
      cpu: ([x, y]) => [bceWithLogitsCpu(x, y, posWeight, weight)],
    });
  });

  it('errors name the shapes', () => {
    expect(() => bceWithLogits(device.zeros([2, 3]), device.zeros([3, 2]))).toThrow(/logits \[2, 3\] and targets \[3, 2\]/);
    expect(() => bceWithLogits(device.zeros([2, 3]), device.zeros([2, 3]), { posWeight: device.ones([2]) })).toThrow(/posWeight \[2\] must be \[3\]/);
  });
});

describe('AdamW and gradient clipping', () => {
  it('three steps match the CPU reference, with weight decay and a clipping scale', async () => {
    const shape = [5, 7];
    const p0 = seededValues(35, 8);
    const p = device.tensor(p0, shape).requireGrad();
    const hyper = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05 };
    const opt = new AdamW([p], hyper);
    const ref = Float64Array.from(p0);
    const m = new Float64Array(35);
    const v = new Float64Array(35);
    for (let step = 1; step <= 3; step++) {
      const gvals = seededValues(35, 100 + step, -2, 2);
      p.setGrad(device.tensor(gvals, shape));
      const { norm, scale } = gradNormScale([p], 1.5);
      const normCpu = Math.sqrt(gvals.reduce((s, g) => s + g * g, 0));
      expectClose([await norm.item()], [normCpu], { atol: 0, rtol: 1e-5 });
      const clip = Math.min(1, 1.5 / (normCpu + 1e-6));
      opt.step({ gradScale: scale });
      adamwCpu(ref, gvals, m, v, hyper, step, clip);
      p.zeroGrad();
    }
    // f32 state over 3 steps: ~1e-6 relative on the update.
    expectClose(await p.data(), ref, { atol: 1e-6, rtol: 1e-5 });
  });
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
