// Buffers derived from unchanged ones (engine/derived.ts): the cache's rules on the real device, then
// the 'window' matmul's kept packs of B. A kept pack must never be read after its source changed, by
// whatever path the change came: a kernel writing the buffer (AdamW), a queue write (setParam), or
// the buffer's release and reuse. Each product is checked against the f64 CPU reference.

import { beforeAll, describe, expect, it } from 'vitest';
import { AdamW, linear, noGrad, tidy, type Device, type Tensor } from '../../engine/node.js';
import { DerivedCache, derivedBudget } from '../../engine/derived.js';
import { matmulCpu, matmulFused } from '../../kernels/matmul.js';
import { fixedSubgroupSize, matmulPlan } from '../../kernels/matmul-plan.js';
import { expectClose, getDevice, seededValues } from '../helpers.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

describe('DerivedCache', () => {
  it('keeps a derivation from its second sight on, and drops it when the source is written', () => {
    const cache = new DerivedCache(device, 1 << 20);
    const src = device.allocate(4096);
    let fills = 0;
    const fill = () => void fills++;
    const first = cache.get(src, 'a', 2048, fill);
    expect(first.temporary).toBe(true);
    device.release(first.buffer);
    const second = cache.get(src, 'a', 2048, fill);
    expect(second.temporary).toBe(false);
    const third = cache.get(src, 'a', 2048, fill);
    expect(third).toEqual({ buffer: second.buffer, temporary: false });
    expect(fills).toBe(2);
    expect(cache.stats()).toEqual({ keptBytes: 2048, keptBuffers: 1, hits: 1 });
    // Another key of the same source is a derivation of its own.
    const other = cache.get(src, 'b', 2048, fill);
    expect(other.temporary).toBe(true);
    device.release(other.buffer);

    const live = device.memory().liveBytes;
    cache.written(src);
    expect(cache.stats().keptBytes).toBe(0);
    expect(cache.active).toBe(false);
    expect(device.memory().liveBytes).toBeLessThan(live);
    // After the write the source counts as new: seen once, kept at the next sight.
    const again = cache.get(src, 'a', 2048, fill);
    expect(again.temporary).toBe(true);
    device.release(again.buffer);
    expect(fills).toBe(4);
    cache.clear();
    device.release(src);
  });

  it('keeps nothing past its byte budget, and nothing for keep = false', () => {
    const small = new DerivedCache(device, 1000);
    const src = device.allocate(4096);
    for (let i = 0; i < 3; i++) {
      const r = small.get(src, 'a', 2048, () => {});
      expect(r.temporary).toBe(true);
      device.release(r.buffer);
    }
    expect(small.stats().keptBuffers).toBe(0);
    // A derivation over the whole budget is not even remembered.
    expect(small.active).toBe(false);
    const big = new DerivedCache(device, 1 << 20);
    for (let i = 0; i < 3; i++) {
      const r = big.get(src, 'a', 2048, () => {}, false);
      expect(r.temporary).toBe(true);
      device.release(r.buffer);
    }
    expect(big.active).toBe(false);
    small.clear();
    device.release(src);
  });
});

describe('the byte budget', () => {
  it('comes from the option, else VITGPU_DERIVED_MB, else 1 GiB; anything else is refused by name', () => {
    const saved = process.env.VITGPU_DERIVED_MB;
    try {
      delete process.env.VITGPU_DERIVED_MB;
      expect(derivedBudget(undefined)).toBe(2 ** 30);
      process.env.VITGPU_DERIVED_MB = '0';
      expect(derivedBudget(undefined)).toBe(0);
      process.env.VITGPU_DERIVED_MB = '1.5';
      expect(derivedBudget(undefined)).toBe(1.5 * 2 ** 20);
      expect(derivedBudget(4096)).toBe(4096);
      process.env.VITGPU_DERIVED_MB = 'lots';
      expect(() => derivedBudget(undefined)).toThrow(/VITGPU_DERIVED_MB="lots": expected MiB/);
      process.env.VITGPU_DERIVED_MB = '-1';
      expect(() => derivedBudget(undefined)).toThrow(/VITGPU_DERIVED_MB="-1"/);
      expect(() => derivedBudget(-5)).toThrow(/maxDerivedBytes: -5/);
    } finally {
      if (saved === undefined) delete process.env.VITGPU_DERIVED_MB;
      else process.env.VITGPU_DERIVED_MB = saved;
    }
  });
});

describe("the 'window' matmul's kept packs of B", () => {
  const M = 40;
  const K = 300;
  const N = 70;
  // As in test/kernels/matmul.test.ts: an f32 dot product of length K is off by about sqrt(K)·eps.
  const TOL = { atol: 4e-6 * Math.sqrt(K) + 1e-6, rtol: 1e-5 };
  const reference = (x: Float32Array, w: Float32Array) => {
    // x [M, K] · wᵀ with w stored [N, K].
    const wt = new Float64Array(K * N);
    for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) wt[k * N + n] = w[n * K + k];
    return matmulCpu(x, wt, 1, M, K, N);
  };
  const product = async (x: Tensor, w: Tensor) => {
    const wt = w.transpose();
    const { out } = matmulFused(x, wt, {}, { variant: 'window' });
    const got = await out.data();
    out.dispose();
    wt.dispose();
    return got;
  };

  it('is kept from the second product on, and never read after the weight changed', async ({ skip }) => {
    if (fixedSubgroupSize(device) === null) skip();
    const xs = seededValues(M * K, 1);
    const x = device.tensor(xs, [M, K]);
    let ws = seededValues(N * K, 2);
    const w = device.tensor(ws, [N, K]);
    const start = device.derived.stats();
    for (let call = 0; call < 3; call++) expectClose(await product(x, w), reference(xs, ws), TOL);
    expect(device.derived.stats().keptBuffers).toBe(start.keptBuffers + 1);
    expect(device.derived.stats().hits).toBe(start.hits + 1);
    expect(device.memory().derivedBytes).toBeGreaterThan(0);

    // A queue write (what setParam and checkpoint loading do).
    ws = seededValues(N * K, 3);
    device.write(w.storage.buffer, 0, ws);
    // The values first: a stale pack would give the old weight's product.
    for (let call = 0; call < 3; call++) expectClose(await product(x, w), reference(xs, ws), TOL);
    expect(device.derived.stats().keptBuffers).toBe(start.keptBuffers + 1);

    // A kernel writing the weight in place (an optimizer step).
    const p = w.requireGrad();
    const opt = new AdamW([p], { lr: 0.5, weightDecay: 0 });
    tidy(() => {
      opt.zeroGrad();
      linear(x, p).square().sum().backward();
      opt.step();
    });
    ws = await w.data();
    expectClose(await product(x, w), reference(xs, ws), TOL);
    expect(device.derived.stats().keptBuffers).toBe(start.keptBuffers);

    // Disposing of the weight releases what was kept for it.
    await product(x, w);
    expect(device.derived.stats().keptBuffers).toBe(start.keptBuffers + 1);
    opt.dispose();
    w.dispose();
    expect(device.derived.stats().keptBuffers).toBe(start.keptBuffers);
    x.dispose();
  });

  it('keeps nothing in training, where every step writes the weights', async ({ skip }) => {
    const rows = 256;
    const w = device.randn([64, 256], { seed: 5, std: 0.05 }).requireGrad();
    const probe = device.zeros([rows, 256]);
    const wt = w.transpose();
    const variant = matmulPlan(probe, wt).variant;
    probe.dispose();
    wt.dispose();
    if (variant !== 'window') skip();
    const opt = new AdamW([w], { lr: 1e-3 });
    const start = device.derived.stats();
    for (let step = 0; step < 3; step++) {
      // A new batch every step, as in training (the inputs are uploaded again).
      const x = device.tensor(seededValues(rows * 256, 10 + step), [rows, 256]);
      tidy(() => {
        opt.zeroGrad();
        linear(x, w).square().mean().backward();
        opt.step();
      });
      x.dispose();
    }
    expect(device.derived.stats().keptBuffers).toBe(start.keptBuffers);
    // In inference the same weight is kept from its second use on.
    const x = device.tensor(seededValues(rows * 256, 20), [rows, 256]);
    for (let i = 0; i < 2; i++) noGrad(() => tidy(() => linear(x, w))).dispose();
    expect(device.derived.stats().keptBuffers).toBe(start.keptBuffers + 1);
    x.dispose();
    opt.dispose();
    w.dispose();
    expect(device.derived.stats().keptBuffers).toBe(start.keptBuffers);
  });
});
