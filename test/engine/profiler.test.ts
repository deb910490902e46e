import { beforeAll, describe, expect, it } from 'vitest';
import {
  AdamW, bceWithLogits, chromeTrace, createNodeDevice, formatProfileTable, MAX_TRACE_EVENTS, mergeTraces, PROFILE_QUERY_CAPACITY, tidy,
  type Device, type ProfileReport,
} from '../../engine/node.js';
import { KernelTotals } from '../../engine/profile-report.js';
import { VisionTransformer, presetConfig } from '../../models/vit.js';
import { getDevice, seededValues } from '../helpers.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

/** Every beginComputePass descriptor and query set the device's GPUDevice is asked for from now on. */
function watchGpu(dev: Device): { passes: (GPUComputePassDescriptor | undefined)[]; querySets: number; restore(): void } {
  const gpu = dev.gpu as unknown as Record<string, unknown>;
  const own = { createCommandEncoder: gpu.createCommandEncoder, createQuerySet: gpu.createQuerySet };
  const seen = { passes: [] as (GPUComputePassDescriptor | undefined)[], querySets: 0, restore: () => Object.assign(gpu, own) };
  const encoderOf = (own.createCommandEncoder as GPUDevice['createCommandEncoder']).bind(dev.gpu);
  const querySetOf = (own.createQuerySet as GPUDevice['createQuerySet']).bind(dev.gpu);
  gpu.createCommandEncoder = (d?: GPUCommandEncoderDescriptor) => {
    const enc = encoderOf(d);
    const begin = enc.beginComputePass.bind(enc);
    (enc as { beginComputePass: unknown }).beginComputePass = (pd?: GPUComputePassDescriptor) => {
      seen.passes.push(pd);
      return begin(pd);
    };
    return enc;
  };
  gpu.createQuerySet = (d: GPUQuerySetDescriptor) => {
    seen.querySets++;
    return querySetOf(d);
  };
  return seen;
}

async function profileMatmuls(dev: Device, times: number, timing?: 'cpu'): Promise<ProfileReport> {
  const a = dev.tensor(seededValues(96 * 64, 1), [96, 64]);
  const b = dev.tensor(seededValues(64 * 80, 2), [64, 80]);
  await a.data();
  const session = dev.profile(timing ? { timing } : {});
  for (let i = 0; i < times; i++) tidy(() => a.matmul(b).sum()).dispose();
  const report = await session.stop();
  a.dispose();
  b.dispose();
  return report;
}

function checkTrace(report: ProfileReport): void {
  const trace = JSON.parse(JSON.stringify(chromeTrace(report, 'test')));
  expect(Array.isArray(trace.traceEvents)).toBe(true);
  const complete = trace.traceEvents.filter((e: { ph: string }) => e.ph === 'X');
  expect(complete).toHaveLength(report.events.length);
  expect(report.droppedEvents).toBe(0);
  expect(report.events.length).toBe(report.dispatches);
  for (const e of complete) {
    expect(typeof e.name).toBe('string');
    expect(Number.isFinite(e.ts) && e.ts >= 0).toBe(true);
    expect(Number.isFinite(e.dur) && e.dur >= 0).toBe(true);
    expect(e.pid).toBe(1);
    expect(e.tid).toBe(1);
  }
  expect(trace.traceEvents.some((e: { ph: string; name: string }) => e.ph === 'M' && e.name === 'process_name')).toBe(true);
}

describe('profiler', () => {
  it('with profiling off, creates no query set and no timestampWrites', async () => {
    const seen = watchGpu(device);
    try {
      await profileMatmuls(device, 0); // a started-and-stopped profile leaves nothing behind
      seen.passes.length = 0;
      seen.querySets = 0;
      const x = device.ones([1000]);
      tidy(() => x.mul(2).add(1).sum()).dispose();
      await x.data();
      x.dispose();
      expect(seen.passes.length).toBeGreaterThan(0);
      expect(seen.passes.every((p) => p?.timestampWrites === undefined)).toBe(true);
      expect(seen.querySets).toBe(0);
    } finally {
      seen.restore();
    }
  });

  it('times every dispatch with timestamp queries: a matmul run N times shows N calls', async () => {
    if (!device.info.features.includes('timestamp-query')) return;
    const report = await profileMatmuls(device, 7);
    expect(report.timing).toBe('timestamp');
    const mm = report.kernels.filter((k) => k.name.startsWith('matmul'));
    expect(mm).toHaveLength(1);
    expect(mm[0].calls).toBe(7);
    expect(mm[0].ms).toBeGreaterThan(0);
    expect(mm[0].flops).toBe(7 * 2 * 96 * 64 * 80);
    expect(mm[0].gflops).toBeGreaterThan(0);
    expect(report.kernels.reduce((s, k) => s + k.share, 0)).toBeCloseTo(1, 6);
    expect(report.kernelMs).toBeLessThanOrEqual(report.wallMs * 1.05);
    const table = formatProfileTable(report);
    expect(table).toMatch(/timestamp queries/);
    expect(table).toMatch(/matmul\S*\s+7\s/);
    checkTrace(report);
  });

  it('times a batch larger than the query capacity (the device submits early)', async () => {
    if (!device.info.features.includes('timestamp-query')) return;
    const x = device.zeros([4]);
    const session = device.profile();
    let y = x;
    for (let i = 0; i < PROFILE_QUERY_CAPACITY + 10; i++) {
      const next = y.add(1);
      if (y !== x) y.dispose();
      y = next;
    }
    const report = await session.stop();
    expect(Array.from(await y.data())).toEqual([1034, 1034, 1034, 1034]);
    y.dispose();
    x.dispose();
    expect(report.dispatches).toBe(PROFILE_QUERY_CAPACITY + 10);
    expect(report.events.every((e) => e.ms >= 0)).toBe(true);
  });

  it('falls back to CPU timing with a flush per kernel, marked as such', async () => {
    const report = await profileMatmuls(device, 5, 'cpu');
    expect(report.timing).toBe('cpu');
    const mm = report.kernels.find((k) => k.name.startsWith('matmul'))!;
    expect(mm.calls).toBe(5);
    expect(formatProfileTable(report)).toMatch(/CPU-timed/);
    checkTrace(report);
  });

  it('uses CPU timing on a device without timestamp-query', async () => {
    const plain = await createNodeDevice({ withoutFeatures: ['timestamp-query'] });
    try {
      expect(plain.info.features).not.toContain('timestamp-query');
      expect(() => plain.profile({ timing: 'timestamp' })).toThrow(/timestamp-query/);
      const seen = watchGpu(plain);
      const report = await profileMatmuls(plain, 3);
      seen.restore();
      expect(report.timing).toBe('cpu');
      expect(report.kernels.find((k) => k.name.startsWith('matmul'))?.calls).toBe(3);
      expect(seen.querySets).toBe(0);
    } finally {
      plain.destroy();
    }
  });

  it('profiles a ViT training step: every kernel family with its per-block count', async () => {
    const config = presetConfig('vit-micro', { labels: 3 });
    const model = new VisionTransformer(device, config, { seed: 1 });
    const opt = new AdamW(model.parameters(), { lr: 1e-3 });
    const images = device.tensor(seededValues(2 * 3 * 64 * 64, 3), [2, 3, 64, 64]);
    const targets = device.tensor([1, 0, 1, 0, 1, 0], [2, 3]);
    const step = () => {
      tidy(() => bceWithLogits(model.forward(images).logits!, targets).backward());
      opt.step();
      opt.zeroGrad();
    };
    step();
    await device.sync();
    const session = device.profile();
    step();
    const report = await session.stop();
    const calls = (prefix: string) => report.kernels.filter((k) => k.name.startsWith(prefix)).reduce((s, k) => s + k.calls, 0);
    expect(calls('attention_fwd')).toBe(config.depth);
    expect(calls('attention_bwd_dq')).toBe(config.depth);
    // Forward: two per block and the final one; backward normalizes each block's two again (the linear
    // after a norm holds the norm's input, not its output).
    expect(calls('layernorm_forward')).toBe(2 * config.depth + 1 + 2 * config.depth);
    expect(calls('adamw')).toBe(model.parameters().length);
    expect(calls('matmul')).toBeGreaterThanOrEqual(3 * 4 * config.depth);
    const merged = JSON.parse(JSON.stringify(mergeTraces([chromeTrace(report, 'a', 1), chromeTrace(report, 'b', 2)])));
    expect(merged.traceEvents.filter((e: { ph: string }) => e.ph === 'X')).toHaveLength(2 * report.dispatches);
    for (const t of [images, targets]) t.dispose();
    opt.dispose();
    model.dispose();
  });

  it('totals: rates only where every call declared its work; the trace stops at MAX_TRACE_EVENTS, the table does not', () => {
    const t = new KernelTotals();
    t.add({ name: 'a', startMs: 0, ms: 2, work: { flops: 4e6, bytes: 1e6 } });
    t.add({ name: 'a', startMs: 2, ms: 2, work: { flops: 4e6 } });
    t.add({ name: 'b', startMs: 4, ms: 1 });
    const r = t.report({ timing: 'timestamp', device: 'test', wallMs: 5 });
    expect(r.kernels.map((k) => [k.name, k.calls, k.ms])).toEqual([['a', 2, 4], ['b', 1, 1]]);
    expect(r.kernels[0].gflops).toBeCloseTo(2, 9); // 8e6 FLOP in 4 ms
    expect(r.kernels[0].gbps).toBeNull();
    expect(r.kernels[1].gflops).toBeNull();
    expect(r.kernels[0].share).toBeCloseTo(0.8, 9);
    const many = new KernelTotals();
    for (let i = 0; i < MAX_TRACE_EVENTS + 3; i++) many.add({ name: 'k', startMs: i, ms: 0.001 });
    const big = many.report({ timing: 'timestamp', device: 'test', wallMs: 1 });
    expect(big.dispatches).toBe(MAX_TRACE_EVENTS + 3);
    expect(big.kernels[0].calls).toBe(MAX_TRACE_EVENTS + 3);
    expect(big.events).toHaveLength(MAX_TRACE_EVENTS);
    expect(big.droppedEvents).toBe(3);
    expect(formatProfileTable(big)).toMatch(/trace keeps the first 200000/);
  });

  it('refuses a second profile while one runs', async () => {
    const session = device.profile();
    expect(() => device.profile()).toThrow(/already running/);
    await session.stop();
    await expect(session.stop()).rejects.toThrow(/already stopped/);
  });
});

