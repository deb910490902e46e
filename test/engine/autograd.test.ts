// Autograd mechanics (engine/autograd.ts): accumulation, noGrad and detach, freeing the graph. The
// gradient checks of each op are in test/ops/<family>.test.ts.

import { beforeAll, describe, expect, it } from 'vitest';
import { noGrad, tidy, type Device } from '../../engine/node.js';
import { getDevice } from '../helpers.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

describe('autograd mechanics', () => {
  it('a tensor used twice gets both contributions', async () => {
    const x = device.tensor([1, 2, 3]).requireGrad();
    const y = x.mul(x).add(x.mul(3)); // dy/dx = 2x + 3
    y.sum().backward();
    expect(Array.from(await x.grad!.data())).toEqual([5, 7, 9]);
  });

  it('gradients accumulate across backward calls until zeroGrad', async () => {
    const x = device.tensor([1, 2]).requireGrad();
    x.mul(2).sum().backward();
    x.mul(3).sum().backward();
    expect(Array.from(await x.grad!.data())).toEqual([5, 5]);
    x.zeroGrad();
    expect(x.grad).toBeNull();
  });

  it('noGrad records nothing; detach cuts the graph', () => {
    const x = device.tensor([1, 2]).requireGrad();
    const y = noGrad(() => x.mul(2));
    expect(y.requiresGrad).toBe(false);
    expect(y.gradFn).toBeNull();
    expect(x.mul(2).detach().requiresGrad).toBe(false);
  });

  it('backward frees the graph, and a second backward says so', () => {
    const x = device.tensor([1, 2]).requireGrad();
    const loss = x.exp().sum();
    loss.backward();
    expect(() => loss.backward()).toThrow(/already freed/);
  });

  it('non-scalar backward needs an explicit gradient', () => {
    const x = device.tensor([1, 2]).requireGrad();
    expect(() => x.mul(2).backward()).toThrow(/not a scalar/);
  });

  it('a training step in tidy leaves only parameters and their grads alive', async () => {
    const w = device.randn([16, 8], { seed: 1 }).requireGrad();
    const x = device.randn([4, 16], { seed: 2 });
    const step = () =>
      tidy(() => {
        const loss = x.matmul(w).gelu().square().mean();
        loss.backward();
        w.zeroGrad();
      });
    step();
    await device.sync();
    const live = device.memory().liveBytes;
    for (let i = 0; i < 20; i++) step();
    await device.sync();
    expect(device.memory().liveBytes).toBe(live);
  });

  it('a forward pass whose output is disposed frees its saved tensors without backward', async () => {
    const w = device.randn([64, 64], { seed: 3 }).requireGrad();
    await device.sync();
    const live = device.memory().liveBytes;
    tidy(() => {
      w.exp().mul(w).sigmoid().sum();
    });
    expect(device.memory().liveBytes).toBe(live);
  });
});
