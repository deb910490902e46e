import { beforeAll, describe, expect, it } from 'vitest';
import { createNodeDevice, DisposedError, keep, sizeClass, tidy, type Device, type Tensor } from '../../engine/node.js';
import { getDevice, seededValues } from '../helpers.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

describe('buffer pool', () => {
  it('size classes: at most 25% waste, 256-byte minimum, monotone', () => {
    let prev = 0;
    for (let b = 1; b < 1 << 22; b = Math.ceil(b * 1.07) + 1) {
      const c = sizeClass(b);
      expect(c).toBeGreaterThanOrEqual(b);
      expect(c).toBeGreaterThanOrEqual(256);
      if (b > 256) expect(c / b).toBeLessThanOrEqual(1.25);
      expect(c).toBeGreaterThanOrEqual(prev);
      prev = c;
    }
  });

  it('dispose returns buffers to the pool; views keep storage alive until the last is disposed', () => {
    const before = device.memory().liveBytes;
    const t = device.zeros([1000]);
    const v = t.reshape([10, 100]);
    expect(device.memory().liveBytes - before).toBe(sizeClass(4000));
    t.dispose();
    expect(device.memory().liveBytes - before).toBe(sizeClass(4000));
    v.dispose();
    expect(device.memory().liveBytes).toBe(before);
    const pooled = device.memory().pooledBytes;
    const again = device.zeros([1000]); // reuses the pooled buffer
    expect(device.memory().pooledBytes).toBe(pooled - sizeClass(4000));
    again.dispose();
  });

  it('a buffer released past the pool limit while unsubmitted work binds it is destroyed only after that work is submitted', async () => {
    // A batch-30 ViT-B step released more than the default 2 GiB and failed with "used in submit while destroyed".
    const small = await createNodeDevice({ maxPooledBytes: 0 });
    try {
      const values = seededValues(1000, 2);
      const x = small.tensor(values, [1000]);
      const y = x.mul(2).add(1);
      x.dispose(); // bound by the two kernels just recorded
      const z = y.mul(3);
      y.dispose();
      const f = Math.fround;
      expect(Array.from(await z.data())).toEqual(Array.from(values, (v) => f(f(f(v * 2) + 1) * 3)));
      expect(small.memory().pooledBytes).toBe(0);
      z.dispose();
    } finally {
      small.destroy();
    }
  });

  it('peak tracks the high-water mark', () => {
    const start = device.memory();
    const big = device.zeros([1 << 20]);
    const peak = device.memory().peakBytes;
    big.dispose();
    expect(peak).toBeGreaterThanOrEqual(start.liveBytes + (4 << 20));
    expect(device.memory().peakBytes).toBe(peak);
  });
});

describe('tidy', () => {
  it('1,000 iterations of an op chain do not grow live bytes', async () => {
    const x = device.tensor(seededValues(257 * 33, 1), [33, 257]);
    const w = device.tensor(seededValues(257 * 17, 2), [257, 17]);
    let acc = device.zeros([33, 17]);
    const step = () =>
      tidy(() => {
        const h = x.mul(0.5).add(1).gelu().matmul(w);
        const next = acc.mul(0.9).add(h.sub(h.mean(1, true)).div(h.square().mean(1, true).add(1e-5).sqrt()));
        acc.dispose();
        return next;
      });
    acc = step();
    await acc.data();
    acc = step();
    await acc.data();
    const baseline = device.memory().liveBytes;
    const pooledBaseline = device.memory().pooledBytes;
    for (let i = 0; i < 1000; i++) {
      acc = step();
      if (i % 250 === 0) {
        await acc.data();
        expect(device.memory().liveBytes).toBe(baseline);
      }
    }
    const values = await acc.data();
    expect(values.every(Number.isFinite)).toBe(true);
    expect(device.memory().liveBytes).toBe(baseline);
    // The pool recycles: after warm-up, iterations take their buffers from it and add none.
    expect(device.memory().pooledBytes).toBe(pooledBaseline);
  });

  it('keeps returned tensors (also inside arrays and objects) and keep()s; frees the rest', () => {
    const before = device.memory().liveBytes;
    let kept!: Tensor;
    const out = tidy(() => {
      const a = device.ones([10]);
      const b = a.add(1);
      const c = b.mul(2);
      kept = keep(c.sub(1));
      return { pair: [a, c], note: 'x' };
    });
    expect(out.pair[0].isDisposed).toBe(false);
    expect(out.pair[1].isDisposed).toBe(false);
    expect(kept.isDisposed).toBe(false);
    out.pair.forEach((t) => t.dispose());
    kept.dispose();
    expect(device.memory().liveBytes).toBe(before);
  });

  it('nested scopes pass survivors outward; a throwing body frees its tensors', () => {
    const before = device.memory().liveBytes;
    const outer = tidy(() => {
      const inner = tidy(() => device.ones([4]).add(1));
      const unused = device.zeros([4]);
      void unused;
      return inner.mul(3);
    });
    expect(device.memory().liveBytes - before).toBe(sizeClass(16));
    outer.dispose();
    expect(() =>
      tidy(() => {
        device.zeros([100]);
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(device.memory().liveBytes).toBe(before);
  });

  it('rejects async bodies', () => {
    expect(() => tidy(async () => device.zeros([1]))).toThrow(/synchronous/);
  });

  it('use after dispose names the op', async () => {
    const t = device.zeros([3]);
    t.dispose();
    expect(() => t.add(1)).toThrow(DisposedError);
    expect(() => t.sum()).toThrow(/sum: tensor \[3\] was used after dispose/);
    await expect(t.data()).rejects.toThrow(DisposedError);
  });
});
