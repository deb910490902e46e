// The autotuner's store and policies (kernels/tune.ts, engine/tune-node.ts) on the real device: the
// JSON cache round trip, adapter keys, corrupt and foreign files, and what each policy times.

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fileTuneStore, installTuner, tunePolicyFromEnv, vitgpuCacheDir, vitgpuVersion, type Device, type TuneEntry } from '../../engine/node.js';
import { matmulCpu } from '../../kernels/matmul.js';
import { matmulPlan } from '../../kernels/matmul-plan.js';
import { MATMUL_FAMILY, matmulCandidateId } from '../../kernels/matmul-tune.js';
import { adapterKey, tunedChoice, zerosScratch, type TuneFamily } from '../../kernels/tune.js';
import { launch, pointwiseKernel } from '../../kernels/wgsl.js';
import { expectClose, getDevice, seededValues } from '../helpers.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});
afterEach(() => {
  // Back to the suite's policy for whatever runs next in this file.
  installTuner(device, { policy: 'off', store: fileTuneStore(join(tempDir(), 'unused.json')), version: 'test' });
});

const tempDir = () => mkdtempSync(join(tmpdir(), 'vitgpu-tune-'));

/** x [m, 16] · w [16, n] through matmulPlan/matmulFused (no options: the tuner is asked), checked on the CPU. */
async function product(m: number, n: number, k = 16) {
  const xd = seededValues(m * k, 41);
  const wd = seededValues(k * n, 42);
  const x = device.tensor(xd, [m, k]);
  const w = device.tensor(wd, [k, n]);
  const plan = matmulPlan(x, w);
  const out = x.matmul(w);
  expectClose(await out.data(), matmulCpu(xd, wd, 1, m, k, n), { atol: 4e-6 * Math.sqrt(k) + 1e-6, rtol: 1e-5 });
  for (const t of [x, w, out]) t.dispose();
  return matmulCandidateId(plan);
}

const entry = (choice: string, rule: string): TuneEntry => ({ kernel: 'matmul', rule, choice, ms: { [rule]: 2, [choice]: 1 }, failed: {} });

describe('the tuning cache file', () => {
  it('round trips, merges per adapter, and lists every adapter', () => {
    const path = join(tempDir(), 'sub', 'tune.json');
    const store = fileTuneStore(path, () => {
      throw new Error('no warning expected');
    });
    expect(store.load('a')).toEqual({});
    store.save('a', { 'matmul m8': entry('tiled', 'register.r8.c1.l8') });
    store.save('b', { 'matmul m16': entry('tiled', 'register.r8.c1.l8') });
    store.save('a', { 'matmul m32': entry('register.r4.c1.l8', 'register.r8.c1.l8') });
    const again = fileTuneStore(path);
    expect(Object.keys(again.load('a')).sort()).toEqual(['matmul m32', 'matmul m8']);
    expect(again.load('a')['matmul m8'].choice).toBe('tiled');
    expect(again.load('c')).toEqual({});
    expect(Object.keys(again.list()).sort()).toEqual(['a', 'b']);
    expect(JSON.parse(readFileSync(path, 'utf8')).format).toBe(1);
    again.clear();
    expect(again.list()).toEqual({});
  });

  it('a corrupt or foreign file is ignored with one warning, and replaced at the next save', () => {
    for (const [text, why] of [['{"format": 1, "adap', /not valid JSON/], ['{"format": 99, "adapters": {}}', /format 99, this vitgpu reads format 1/], ['{"format": 1}', /no "adapters"/], ['[1]', /not a JSON object/]] as const) {
      const path = join(tempDir(), 'tune.json');
      writeFileSync(path, text);
      const warnings: string[] = [];
      const store = fileTuneStore(path, (l) => warnings.push(l));
      expect(store.load('a')).toEqual({});
      expect(store.load('a')).toEqual({});
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain(path);
      expect(warnings[0]).toMatch(why);
      store.save('a', { k: entry('tiled', 'tiled') });
      expect(fileTuneStore(path).load('a').k.choice).toBe('tiled');
    }
  });

  it('the cache folder and the policy come from the environment, checked', () => {
    const saved = { ...process.env };
    try {
      process.env.VITGPU_CACHE_DIR = '/x/y';
      expect(vitgpuCacheDir()).toBe('/x/y');
      delete process.env.VITGPU_CACHE_DIR;
      process.env.XDG_CACHE_HOME = '/c';
      expect(vitgpuCacheDir()).toBe('/c/vitgpu');
      delete process.env.VITGPU_TUNE;
      expect(tunePolicyFromEnv()).toBe('cached');
      process.env.VITGPU_TUNE = 'always';
      expect(() => tunePolicyFromEnv()).toThrow(/VITGPU_TUNE must be one of off, cached, full, got "always"/);
    } finally {
      process.env = saved;
    }
    expect(vitgpuVersion()).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('tuning policies', () => {
  it("'off' asks nothing and times nothing", async () => {
    const store = fileTuneStore(join(tempDir(), 'tune.json'));
    const tuner = installTuner(device, { policy: 'off', store, version: 'test' });
    await product(8, 12);
    expect(tuner.seen.size).toBe(0);
    expect(tuner.timedCandidates).toBe(0);
    expect(device.idleWork).toBeNull();
    expect(store.list()).toEqual({});
  });

  it("'cached' uses stored choices, the rules for misses, and never times", async () => {
    const store = fileTuneStore(join(tempDir(), 'tune.json'));
    const version = 'test';
    let tuner = installTuner(device, { policy: 'cached', store, version });
    const rule = await product(8, 12);
    expect(tuner.seen.size).toBe(1);
    expect(tuner.pendingCount).toBe(0);
    expect(device.idleWork).toBeNull();
    // A stored choice that is not the rule's is used, and still matches the CPU.
    const [key] = [...tuner.seen.keys()];
    const other = rule === 'register.r4.c2.l32' ? 'register.r8.c1.l8' : 'register.r4.c2.l32';
    store.save(adapterKey(device.info, version), { [key]: entry(other, rule) });
    tuner = installTuner(device, { policy: 'cached', store, version });
    expect(await product(8, 12)).toBe(other);
    expect(await product(5, 16)).toBe(other); // another size of the same class (m8 k16 n16, a-k4 b-n4)
    // Another adapter key (here: another vitgpu version) does not see it.
    tuner = installTuner(device, { policy: 'cached', store, version: 'other' });
    expect(await product(8, 12)).toBe(rule);
    expect(tuner.timedCandidates).toBe(0);
  });

  it("'full' times a miss once, at the next read, then uses and stores the winner", { timeout: 600_000 }, async () => {
    const path = join(tempDir(), 'tune.json');
    const store = fileTuneStore(path);
    const tuner = installTuner(device, { policy: 'full', store, version: 'test', reps: 1 });
    const rule = await product(8, 12); // the miss runs the rule; the read then times the class
    expect(tuner.pendingCount).toBe(0);
    const [key] = [...tuner.seen.keys()];
    const found = tuner.entry(key)!;
    expect(found.rule).toBe(rule);
    const call = { rows: 8, k: 16, n: 12, batches: 1, a: { offset: 0, batchStride: 0, rowStride: 16, colStride: 1 }, b: { offset: 0, batchStride: 0, rowStride: 12, colStride: 1 }, flags: { bias: false, gelu: false, residual: false, pre: false } };
    expect(Object.keys(found.ms).length + Object.keys(found.failed).length).toBe(MATMUL_FAMILY.candidates(device, call).length);
    expect(Object.keys(found.failed)).toEqual([]);
    expect(tuner.timedCandidates).toBe(Object.keys(found.ms).length);
    const timed = tuner.timedCandidates;
    expect(await product(8, 12)).toBe(found.choice);
    expect(await product(7, 12)).toBe(found.choice);
    expect(tuner.timedCandidates).toBe(timed);
    expect(fileTuneStore(path).load(adapterKey(device.info, 'test'))[key].choice).toBe(found.choice);
    // A new process (here: a new tuner on the file) starts from the stored choice without timing.
    const next = installTuner(device, { policy: 'full', store: fileTuneStore(path), version: 'test' });
    expect(await product(8, 12)).toBe(found.choice);
    expect(next.timedCandidates).toBe(0);
  });
});

describe('candidates that fail', () => {
  it('one that does not compile is skipped and remembered, and the device stays usable', async () => {
    const kernel = (ok: boolean) => pointwiseKernel({
      key: `test:tune-${ok ? 'good' : 'bad'}`, name: `tune_test_${ok ? 'good' : 'bad'}`, comment: 'tuner test', paramWords: 1,
      buffers: { out: 'read_write' }, wg: 4, body: ok ? 'out[i] = 1.0;' : 'out[i] = no_such_function();',
    });
    const family: TuneFamily<number> = {
      name: 'test.broken',
      classKey: (n) => `n${n}`,
      rule: () => 'good',
      candidates: () => ['bad', 'good'],
      scratch(dev, n) {
        const out = zerosScratch(dev, n);
        return { run: (id) => launch(kernel(id === 'good'), { out }, new Uint32Array([n]), [1]), dispose: () => out.dispose() };
      },
      describe: (n) => `${n}`,
    };
    const tuner = installTuner(device, { policy: 'full', store: fileTuneStore(join(tempDir(), 'tune.json')), version: 'test', reps: 1 });
    expect(tunedChoice(device, family, 4)).toBeNull();
    await device.sync();
    const e = tuner.entry('test.broken n4')!;
    expect(e.choice).toBe('good');
    expect(Object.keys(e.ms)).toEqual(['good']);
    expect(e.failed.bad).toMatch(/tune_test_bad failed to compile/);
    expect(tunedChoice(device, family, 4)).toBe('good');
    const t = device.tensor([1, 2, 3]);
    expect(Array.from(await t.data())).toEqual([1, 2, 3]);
    t.dispose();
  });
});
