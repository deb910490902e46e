// The Philox random kernels (kernels/random.ts) against the CPU reference, and both variants compile.

import { beforeAll, describe, expect, it } from 'vitest';
import { philox4x32Cpu, randomCpu, randomKernel } from '../../kernels/random.js';
import { type Device } from '../../engine/node.js';
import { expectClose, expectCompiles, getDevice } from '../helpers.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

describe('Philox4x32-10', () => {
  it('CPU reference matches the published known-answer vectors', () => {
    // Random123 kat_vectors: philox4x32 10 rounds.
    expect(philox4x32Cpu([0, 0, 0, 0], [0, 0])).toEqual([0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
    expect(philox4x32Cpu([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff])).toEqual([
      0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd,
    ]);
    expect(philox4x32Cpu([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0])).toEqual([
      0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1,
    ]);
  });
});

describe('random tensors', () => {
  it('uniform draws equal the CPU reference bit for bit (odd length)', async () => {
    const n = 1001;
    const got = await device.rand([n], { seed: 1234 }).data();
    expect(Array.from(got)).toEqual(Array.from(randomCpu('uniform', n, 1234, 0, 0, 1)));
    const scaled = await device.rand([7, 3], { seed: 9, low: -2, high: 3 }).data();
    expectClose(scaled, randomCpu('uniform', 21, 9, 0, -2, 3), { atol: 1e-6, rtol: 0 });
  });

  it('normal draws match the CPU reference on every adapter', async () => {
    // Our own log, sin and cos (kernels/math-wgsl.ts), not WGSL's (2^-11 for sin/cos): f32 rounding
    // only, ~6e-7 at |z| = 5 in the tails of 2^16 standard draws.
    const n = 1 << 16;
    expectClose(await device.randn([n], { seed: 3 }).data(), randomCpu('normal', n, 3, 0, 0, 1), { atol: 1e-6, rtol: 5e-7 });
    const got = await device.randn([999], { seed: 42, mean: 1, std: 2 }).data();
    expectClose(got, randomCpu('normal', 999, 42, 0, 1, 2), { atol: 2e-6, rtol: 5e-7 });
  });

  it('has the right moments', async () => {
    const n = 1 << 18;
    const z = device.randn([n], { seed: 7 });
    const mean = await z.mean().item();
    const variance = await z.square().mean().item();
    // Standard errors: mean 1/sqrt(n) ≈ 0.002, variance sqrt(2/n) ≈ 0.0028; allow 5 sigma.
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(Math.abs(variance - 1)).toBeLessThan(0.014);
    const u = device.rand([n], { seed: 7 });
    expect(Math.abs((await u.mean().item()) - 0.5)).toBeLessThan(5 * Math.sqrt(1 / 12 / n));
    expect(await u.min().item()).toBeGreaterThanOrEqual(0);
    expect(await u.max().item()).toBeLessThan(1);
  });

  it('same seed gives the same tensor, different seeds and unseeded draws differ', async () => {
    const a = await device.randn([64], { seed: 5 }).data();
    const b = await device.randn([64], { seed: 5 }).data();
    const c = await device.randn([64], { seed: 6 }).data();
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
    device.manualSeed(99);
    const d1 = await device.randn([64]).data();
    const d2 = await device.randn([64]).data();
    expect(Array.from(d1)).not.toEqual(Array.from(d2));
    device.manualSeed(99);
    expect(Array.from(await device.randn([64]).data())).toEqual(Array.from(d1));
  });
});

describe('random kernel variants', () => {
  it('uniform and normal compile', async () => {
    expect(await expectCompiles(device, [randomKernel('uniform'), randomKernel('normal')])).toBe(2);
  });
});
