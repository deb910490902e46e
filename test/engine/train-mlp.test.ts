import { expect, it } from 'vitest';
import { AdamW, linear, noGrad, tidy } from '../../engine/node.js';
import { getDevice, seededValues } from '../helpers.js';

it('a two-layer MLP trains to near-zero loss on a small regression task', async () => {
  const device = await getDevice();
  const n = 64;
  const xs = seededValues(n * 2, 1, -1, 1);
  const ys = new Float32Array(n);
  for (let i = 0; i < n; i++) ys[i] = Math.sin(2 * xs[2 * i]) + xs[2 * i + 1] ** 2 - 0.3;
  const x = device.tensor(xs, [n, 2]);
  const y = device.tensor(ys, [n, 1]);
  const hidden = 32;
  const w1 = device.randn([hidden, 2], { seed: 11, std: 1 }).requireGrad();
  const b1 = device.zeros([hidden]).requireGrad();
  const w2 = device.randn([1, hidden], { seed: 12, std: 1 / Math.sqrt(hidden) }).requireGrad();
  const b2 = device.zeros([1]).requireGrad();
  const params = [w1, b1, w2, b2];
  const opt = new AdamW(params, { lr: 0.02, weightDecay: 0 });
  const mse = () => linear(linear(x, w1, b1, { gelu: true }), w2, b2).sub(y).square().mean();

  const evaluate = async () => {
    const loss = noGrad(() => tidy(() => mse()));
    const v = await loss.item();
    loss.dispose();
    return v;
  };
  const initial = await evaluate();
  const live = device.memory().liveBytes;
  for (let step = 0; step < 600; step++) {
    tidy(() => {
      opt.zeroGrad();
      mse().backward();
      opt.step();
    });
  }
  const final = await evaluate();
  expect(initial).toBeGreaterThan(0.1);
  expect(final).toBeLessThan(2e-3);
  // Only the optimizer's moments (two per parameter) and the last gradients were added: 3 buffers each.
  expect(device.memory().liveBuffers).toBe(6 + 3 * params.length);
  expect(device.memory().liveBytes).toBeGreaterThan(live);
});
