import { beforeAll, describe, expect, it, vi } from 'vitest';
import { readFileSync } from 'node:fs';
import { createNodeDevice, DeviceLostError, GpuError, lavapipeVectorWidth, listAdapters, matmul, NoAdapterError, WANTED_FEATURES, type Device } from '../../engine/node.js';
import { defineKernel, launch, paramsBlock } from '../../kernels/wgsl.js';
import { elementwiseKernel } from '../../kernels/elementwise.js';
import { getDevice } from '../helpers.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

describe('device', () => {
  it('reports the adapter, the optional features it got and raised limits', () => {
    expect(device.name.length).toBeGreaterThan(0);
    for (const f of device.info.features) expect(WANTED_FEATURES).toContain(f);
    expect(device.info.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 2 ** 20);
    expect(device.gpu.limits.maxStorageBufferBindingSize).toBe(device.info.limits.maxStorageBufferBindingSize);
  });

  it('lists adapters and selects one by name', async () => {
    const adapters = await listAdapters();
    expect(adapters.length).toBeGreaterThan(0);
    const word = adapters[0].name.split(/[\s(]/)[0];
    const picked = await createNodeDevice({ adapter: word });
    expect(picked.info.description.toLowerCase() + picked.name.toLowerCase()).toContain(word.toLowerCase());
    picked.destroy();
  });

  it('an adapter name that matches nothing is a NoAdapterError listing what exists', async () => {
    const err = await createNodeDevice({ adapter: 'no-such-gpu-xyz' }).catch((e) => e);
    expect(err).toBeInstanceOf(NoAdapterError);
    expect(String(err.message)).toMatch(/no-such-gpu-xyz/);
    expect(String(err.message)).toMatch(/Available adapters/);
  });

  it('batches many ops into one submission', async () => {
    const x = device.ones([100]);
    await x.data();
    const before = device.batchId;
    let y = x;
    for (let i = 0; i < 50; i++) y = y.add(1);
    expect(device.batchId).toBe(before); // nothing submitted yet
    expect(await y.max().item()).toBe(51);
    expect(device.batchId).toBe(before + 1);
  });

  it('caches pipelines by WGSL source', async () => {
    const a = device.ones([3, 5]);
    await a.add(a).data();
    const count = device.pipelineCount;
    // Other shapes that collapse to the same rank and layout reuse the kernel and its pipeline.
    await device.ones([7, 3]).add(device.ones([7, 3])).data();
    await device.ones([9, 5, 3]).add(device.ones([9, 5, 3])).data();
    expect(device.pipelineCount).toBe(count);
    await device.ones([9, 4]).add(device.ones([9, 1])).data(); // broadcast: a new variant
    expect(device.pipelineCount).toBe(count + 1);
    // Sizes that are a multiple of 4: the vec4 kernel, one pipeline for all of them.
    await device.ones([4, 4]).add(device.ones([4, 4])).data();
    expect(device.pipelineCount).toBe(count + 2);
    await device.ones([8, 2, 3]).add(device.ones([8, 2, 3])).data();
    expect(device.pipelineCount).toBe(count + 2);
    expect(elementwiseKernel('add', 1, true, [true, true])).toBe(elementwiseKernel('add', 1, true, [true, true]));
  });

  it('debug switch prints a kernel\'s WGSL when its pipeline is built', async () => {
    const spy = vi.spyOn(console, 'error').mockImplementation(() => {});
    device.debugWgsl = 'elementwise_cos';
    let printed: string[];
    try {
      await device.ones([4]).cos().data();
      await device.ones([4]).sin().data();
      printed = spy.mock.calls.map((c) => String(c[0]));
    } finally {
      device.debugWgsl = false;
      spy.mockRestore();
    }
    expect(printed.some((p) => p.includes('vitgpu kernel elementwise_cos') && p.includes('@compute'))).toBe(true);
    expect(printed.some((p) => p.includes('elementwise_sin'))).toBe(false);
  });

  it('a kernel that fails to compile is reported by name at the next read, and the device goes on', async () => {
    const bad = defineKernel('test:broken', () => ({
      name: 'broken_kernel',
      paramWords: 1,
      bindings: ['out'],
      source: `${paramsBlock(1)}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(1) fn main() { out[0] = undefined_symbol; }`,
    }));
    const t = device.zeros([4]);
    launch(bad, { out: t }, new Uint32Array(1), [1]);
    const err = await t.data().catch((e) => e);
    expect(err).toBeInstanceOf(GpuError);
    expect(String(err.message)).toMatch(/broken_kernel failed to compile/);
    expect(Array.from(await device.ones([2]).add(1).data())).toEqual([2, 2]);
  });

  it('launch() takes buffers by binding name and names a missing or unknown one', () => {
    const kernel = elementwiseKernel('add', 1, true, [true, true]);
    expect(kernel.bindings).toEqual(['out', 'in0', 'in1']);
    const t = device.zeros([4]);
    expect(() => launch(kernel, { out: t, in0: t }, new Uint32Array(1), [1])).toThrow(/no buffer given for its binding "in1"/);
    expect(() => launch(kernel, { out: t, in0: t, in1: t, in2: t }, new Uint32Array(1), [1])).toThrow(/no binding named "in2"/);
  });

  it('answers once whether the adapter is a CPU and which subgroup sizes it has', () => {
    expect(typeof device.isCpuAdapter).toBe('boolean');
    if (device.info.features.includes('subgroups')) {
      expect(device.subgroups).not.toBeNull();
      expect(device.subgroups!.maxSize).toBeGreaterThanOrEqual(device.subgroups!.minSize);
    } else {
      expect(device.subgroups).toBeNull();
    }
  });
});

describe("Dawn's waits", () => {
  /** CPU time of this process's main thread (Linux), in ms. */
  const mainThreadCpu = (): number => {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10; // utime + stime in clock ticks of 10 ms
  };

  it('do not spin the main thread while the GPU works', async () => {
    if (process.platform !== 'linux' || process.env.VITGPU_DAWN_POLL === 'spin') return;
    const a = device.randn([512, 512]);
    const b = device.randn([512, 512]);
    const warm = matmul(a, b); // compiles the kernel
    await warm.data();
    warm.dispose();
    let wall = 0;
    let cpu = 0;
    // Long enough (on lavapipe, about a second) that 10 ms clock ticks measure it.
    for (let round = 0; round < 3 && wall < 600; round++) {
      const [c0, t0] = [mainThreadCpu(), performance.now()];
      for (let i = 0; i < 8; i++) {
        const c = matmul(a, b);
        await c.data();
        c.dispose();
      }
      [wall, cpu] = [wall + performance.now() - t0, cpu + mainThreadCpu() - c0];
    }
    // Dawn's own loop keeps the main thread at 80-100% of the wall time here; its share now is the
    // encoding and the readbacks.
    expect(cpu / wall, `main thread ${cpu} ms of CPU in ${wall.toFixed(0)} ms`).toBeLessThan(0.4);
    a.dispose();
    b.dispose();
  });

  it('VITGPU_DAWN_POLL takes throttle or spin; another value is refused, naming the variable, before Dawn starts', async () => {
    const saved = process.env.VITGPU_DAWN_POLL;
    try {
      process.env.VITGPU_DAWN_POLL = 'sleep';
      await expect(createNodeDevice()).rejects.toThrow(/VITGPU_DAWN_POLL must be one of throttle \(the default\), spin, got "sleep"/);
    } finally {
      if (saved === undefined) delete process.env.VITGPU_DAWN_POLL;
      else process.env.VITGPU_DAWN_POLL = saved;
    }
  });

  it('leave every other setImmediate alone', async () => {
    const t0 = performance.now();
    for (let i = 0; i < 200; i++) await new Promise((resolve) => setImmediate(resolve));
    await new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)));
    expect(performance.now() - t0).toBeLessThan(150); // 200 deferred ticks would take 200 ms or more
    expect(await new Promise((resolve) => setImmediate((x: number) => resolve(x), 7))).toBe(7);
  });
});

describe("lavapipe's vector width", () => {
  const avx512 = new Set(['avx', 'avx2', 'fma', 'avx512f', 'avx512bw', 'avx512dq', 'avx512vl']);

  it('asks for 512-bit vectors on CPUs with AVX-512 and keeps a width the user set', () => {
    expect(lavapipeVectorWidth({}, avx512)).toBe('512');
    expect(lavapipeVectorWidth({ LP_NATIVE_VECTOR_WIDTH: '256' }, avx512)).toBeNull();
    expect(lavapipeVectorWidth({ LP_NATIVE_VECTOR_WIDTH: '128' }, avx512)).toBeNull();
    expect(lavapipeVectorWidth({ LP_NATIVE_VECTOR_WIDTH: '' }, avx512)).toBe('512');
    expect(lavapipeVectorWidth({}, new Set(['avx', 'avx2', 'fma']))).toBeNull();
    expect(lavapipeVectorWidth({}, new Set(['avx2', 'avx512f']))).toBeNull(); // no BW/DQ/VL
    expect(lavapipeVectorWidth({}, new Set())).toBeNull();
  });

  it('reaches Mesa: on lavapipe, the subgroup size follows the width set in this process', () => {
    if (!/llvmpipe/i.test(device.info.description + device.name) || !device.subgroups) return;
    const width = Number(process.env.LP_NATIVE_VECTOR_WIDTH);
    if (!width) return; // neither vitgpu nor the user set one: Mesa's default
    expect(device.subgroups).toEqual({ minSize: width / 32, maxSize: width / 32 });
  });
});

describe('device loss', () => {
  it('a lost device rejects reads with DeviceLostError instead of hanging, and later ops throw', async () => {
    const d = await createNodeDevice();
    const t = d.ones([16]).mul(2);
    await t.data();
    const pending = t.add(1);
    d.destroy();
    const started = Date.now();
    const err = await pending.data().catch((e) => e);
    expect(err).toBeInstanceOf(DeviceLostError);
    expect(String(err.message)).toMatch(/device lost \(destroyed\)/);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(() => t.add(1)).toThrow(DeviceLostError);
  });
});
