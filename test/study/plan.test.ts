// Study plans and the pieces that need no GPU: parsing, the grid and its command lines, bad plans
// refused before any training (through the CLI, as users meet them), and the run-directory lease
// with the guard that stops a child writing a run it no longer holds.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { vitgpu } from '../cli-runner.js';
import { parsePlan } from '../../study/plan.js';
import { expandGrid, sharedLabels, trainArgs, type ResolvedPlan } from '../../study/grid.js';
import { Lease, readLease, type LeaseRecord } from '../../study/lease-node.js';
import { STUDY_PLAN, waitFor, writePlan, writeStudyData } from './helpers.js';

let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vitgpu-plan-'));
  await writeStudyData(dir);
});

describe('plan and grid', () => {
  it('parses the plan and expands the grid into runs named by their coordinates', () => {
    const plan = parsePlan(STUDY_PLAN, 'plan.yaml');
    expect(plan.datasets.map((d) => d.name)).toEqual(['alpha', 'beta']);
    expect(plan.datasets[1].labels).toEqual(['cardiomegaly', 'pleural_effusion', 'nodule']);
    expect(plan.inits).toEqual([{ name: 'scratch', kind: 'random' }, { name: 'narrow', kind: 'random', path: undefined, arch: 'vit-tiny-test', imageSize: undefined, heads: undefined }]);
    expect(plan.fractions).toEqual([0.5, 1]);
    expect(plan.eval).toEqual({ resamples: 200, seed: 0, batchSize: undefined });
    expect(plan.cross).toEqual([{ train: 'alpha', test: 'beta', auto: true }, { train: 'beta', test: 'alpha', auto: true }]);
    expect(plan.lines['train.epochs']).toBe(STUDY_PLAN.split('\n').findIndex((l) => l.trim().startsWith('epochs:')) + 1);
    const runs = expandGrid(plan);
    expect(runs.map((r) => r.id)).toEqual([
      'alpha--scratch--f0.5--s3', 'alpha--narrow--f0.5--s3', 'alpha--scratch--f1--s3', 'alpha--narrow--f1--s3',
      'beta--scratch--f0.5--s3', 'beta--narrow--f0.5--s3', 'beta--scratch--f1--s3', 'beta--narrow--f1--s3',
    ]);
    const resolved = { ...plan, datasets: plan.datasets.map((d) => ({ ...d, labelNames: d.labels ?? ['a', 'b'], trainRows: 10 })), crossTests: [] } as ResolvedPlan;
    const args = trainArgs(resolved, runs[1], '/s/runs/x/train');
    const at = (flag: string) => args[args.indexOf(flag) + 1];
    expect(at('--arch')).toBe('vit-tiny-test'); // the initialization's arch overrides train.arch
    expect(at('--train-fraction')).toBe('0.5');
    expect(at('--subset-seed')).toBe('3');
    expect(at('--seed')).toBe('3');
    expect(at('--epochs')).toBe('3');
    expect(at('--out')).toBe('/s/runs/x/train');
    expect(sharedLabels(['Cardiomegaly', 'Pleural Effusion', 'Hernia'], ['pleural_effusion', 'cardiomegaly'])).toEqual([
      { train: 'Cardiomegaly', test: 'cardiomegaly' }, { train: 'Pleural Effusion', test: 'pleural_effusion' },
    ]);
  });

  it('examples/study.yaml is a valid plan', () => {
    const plan = parsePlan(readFileSync(new URL('../../examples/study.yaml', import.meta.url), 'utf8'), 'examples/study.yaml');
    expect(expandGrid(plan)).toHaveLength(24);
    expect(plan.inits.map((i) => i.kind)).toEqual(['random', 'run']);
  });

  it('names the key and line of a parse-time error', () => {
    const bad = (text: string) => () => parsePlan(text, 'p.yaml');
    expect(bad(STUDY_PLAN.replace('  epochs: 3', '  epoch: 3'))).toThrow(/^p\.yaml:\d+: train\.epoch: unknown key \(did you mean "epochs"\?\)/);
    expect(bad(STUDY_PLAN.replace('fractions: [0.5, 1]', 'fractions: [0.5, 1.5]'))).toThrow(/p\.yaml:\d+: fractions\[1\]: a training fraction must be in \(0, 1\], got 1\.5/);
    expect(bad(STUDY_PLAN.replace('fractions: [0.5, 1]', 'fractions: [0, 1]'))).toThrow(/fractions\[0\]: a training fraction must be in \(0, 1\]/);
    expect(bad(STUDY_PLAN.replace('seeds: [3]', 'seeds: []'))).toThrow(/seeds: must be a non-empty list/);
    expect(bad(STUDY_PLAN.replace('reference: scratch', 'reference: dinov2'))).toThrow(/reference: "dinov2" is not one of the initializations/);
    expect(bad(STUDY_PLAN.replace('    labels: [cardiomegaly, pleural_effusion, nodule]', '    labels: []'))).toThrow(/datasets\.beta\.labels: the label set is empty/);
    expect(bad(STUDY_PLAN.replace('  scratch: random', '  scratch: randm'))).toThrow(/initializations\.scratch: write "random"/);
    expect(bad(`${STUDY_PLAN}\n  lr: 0.1\n`)).toThrow(/not valid YAML|lr/);
    expect(bad(STUDY_PLAN.replace('  batch_size: 8', '  batch_size: eight'))).toThrow(/train\.batch_size: must be a positive integer, got "eight"/);
  });
});

describe('bad plans fail with a clear error before any training', () => {
  const cases: [string, (plan: string) => string, RegExp][] = [
    ['unknown key', (p) => p.replace('eval:\n  resamples: 200', 'eval:\n  resample: 200'), /\.yaml:\d+: eval\.resample: unknown key \(did you mean "resamples"\?\)/],
    ['missing file', (p) => p.replace('data: beta/master_list.csv', 'data: gamma/master_list.csv'), /\.yaml:\d+: datasets\.beta\.data: no such file: .*gamma\/master_list\.csv/],
    ['missing checkpoint', (p) => p.replace('  scratch: random', '  scratch:\n    checkpoint: weights/none.safetensors'), /\.yaml:\d+: initializations\.scratch\.checkpoint: no such checkpoint file/],
    ['fraction outside (0, 1]', (p) => p.replace('fractions: [0.5, 1]', 'fractions: [0.5, 2]'), /\.yaml:\d+: fractions\[1\]: a training fraction must be in \(0, 1\], got 2/],
    ['unknown label', (p) => p.replace('labels: [cardiomegaly, pleural_effusion, nodule]', 'labels: [cardiomegaly, hernia]'), /\.yaml:\d+: datasets\.beta\.labels: .*no label column "hernia"/],
    ['empty label set after subsetting', (p) => p.replace('fractions: [0.5, 1]', 'fractions: [0.001, 1]\nsubset:\n  min_positives: 0'),
      /\.yaml:\d+: fractions: datasets\.alpha: the label set is empty after subsetting to fraction 0\.001 \(seed 3, 0 of 54 training rows\)/],
    ['a label without positives after subsetting', (p) => p.replace('fractions: [0.5, 1]', 'fractions: [0.02, 1]\nsubset:\n  min_positives: 0'),
      /datasets\.alpha: after subsetting to fraction 0\.02 \(seed 3, 1 of 54 training rows\), labels? .* no positives; raise subset\.min_positives/],
  ];
  for (const [name, edit, message] of cases) {
    it(name, async () => {
      const plan = writePlan(dir, edit(STUDY_PLAN), `bad-${name.replace(/\W+/g, '-')}.yaml`);
      const out = join(dir, `out-${name.replace(/\W+/g, '-')}`);
      const r = await vitgpu(['study', 'run', plan, '--out', out]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(existsSync(join(out, 'runs')), 'no run was started').toBe(false);
    }, 30_000);
  }
});

describe('run-directory lease', () => {
  const opts = (owner: string, extra = {}) => ({ owner, ttlMs: 400, graceMs: 100, pollMs: 20, ...extra });

  it('is exclusive: a second holder waits until the first releases', async () => {
    const path = join(dir, 'lease-a', 'lease.json');
    const first = await Lease.acquire(path, opts('one'));
    const waits: string[] = [];
    let second: Lease | null = null;
    const taking = Lease.acquire(path, opts('two', { onWait: (h: LeaseRecord) => waits.push(h.owner) })).then((l) => (second = l));
    await new Promise((r) => setTimeout(r, 900)); // longer than the ttl: renewals keep it
    expect(second).toBeNull();
    expect(waits[0]).toBe('one');
    expect(first.lost).toBeNull();
    await first.release();
    await taking;
    expect((await readLease(path))!.owner).toBe('two');
    await second!.release();
    expect(await readLease(path)).toBeNull();
  });

  it('is taken over once expired past the grace, or at once when its holder here is dead; the old holder learns it lost it', async () => {
    const path = join(dir, 'lease-b', 'lease.json');
    const now = Date.now();
    mkdirSync(join(dir, 'lease-b'), { recursive: true });
    writeFileSync(path, JSON.stringify({ owner: 'far', token: 't', host: 'elsewhere', pid: 1, acquiredAt: now, expiresAt: now + 300 }));
    const t0 = Date.now();
    const l = await Lease.acquire(path, opts('here'));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(350); // waited for expiry + grace
    await l.release();
    // A dead process on this host: no waiting.
    const dead = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => dead.on('exit', r));
    writeFileSync(path, JSON.stringify({ owner: 'dead', token: 'd', host: hostname(), pid: dead.pid, acquiredAt: Date.now(), expiresAt: Date.now() + 60_000 }));
    const t1 = Date.now();
    const lost: string[] = [];
    const m = await Lease.acquire(path, opts('heir', { onLost: (why: string) => lost.push(why) }));
    expect(Date.now() - t1).toBeLessThan(300);
    // Someone replaces it: the holder notices at its next renewal.
    writeFileSync(path, JSON.stringify({ ...(await readLease(path))!, token: 'other', owner: 'usurper' }));
    await waitFor('the lease to be lost', () => lost.length > 0, 2000);
    expect(lost[0]).toMatch(/taken over by usurper/);
    await m.release();
    expect((await readLease(path))!.owner).toBe('usurper'); // release leaves another's lease alone
  });

  it('the guard kills a child whose lease is no longer its own', async () => {
    const path = join(dir, 'lease-c', 'lease.json');
    const lease = await Lease.acquire(path, { owner: 'me', ttlMs: 4000 });
    const guard = new URL('../../dist/study/guard-node.js', import.meta.url).href;
    const child = spawn(process.execPath, ['--import', guard, '-e', 'setTimeout(() => {}, 20000)'], {
      env: { ...process.env, VITGPU_LEASE_FILE: path, VITGPU_LEASE_TOKEN: lease.record.token, VITGPU_LEASE_MARGIN_MS: '1000' },
      stdio: 'ignore',
    });
    const exit = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_c, s) => r(s)));
    await new Promise((r) => setTimeout(r, 700));
    expect(child.exitCode).toBeNull();
    expect(child.signalCode).toBeNull();
    writeFileSync(path, JSON.stringify({ ...lease.record, token: 'stolen' }));
    expect(await exit).toBe('SIGKILL');
    await lease.release();
  });
});
