// `vitgpu study` end to end, as users run it: a local study of tiny models on generated data that
// survives a SIGKILL of the study process, then the same study through BullMQ on a real redis-server
// with two workers, one killed mid-run and one frozen while the queue hands its run to the other. The
// distributed study's numbers must equal the local study's (the runs are deterministic), and no run
// directory may be written by two workers at once.

import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vitgpu } from '../cli-runner.js';
import { attempts, midTraining, processesNaming, runDirs, spawnVitgpu, startRedis, waitFor, writePlan, writeStudyData, type Spawned } from './helpers.js';

let dir: string;
let plan: string;
let localStudy: Record<string, unknown> | null = null;
const children: Spawned[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vitgpu-study-'));
  await writeStudyData(dir);
  plan = writePlan(dir);
});

afterAll(() => {
  for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
});

/** The numbers two studies must share (paths and timings aside). */
function numbers(study: Record<string, unknown>) {
  const s = study as { runs: Record<string, unknown>[]; cells: unknown; tests: unknown; cross: unknown };
  return { runs: s.runs.map(({ id, meanAuc, labelAuc, bootstrap, trainImages, epochs, bestEpoch }) => ({ id, meanAuc, labelAuc, bootstrap, trainImages, epochs, bestEpoch })), cells: s.cells, tests: s.tests, cross: s.cross };
}

describe('vitgpu study', () => {
  it('runs a local study, survives a SIGKILL of the study process and resumes without redoing finished runs', async () => {
    const out = join(dir, 'local');
    const first = spawnVitgpu(['study', 'run', plan, '--out', out]);
    children.push(first);
    // Kill the study when two runs are done and a third is mid-training.
    await waitFor('a run mid-training after two finished runs', () => runDirs(out).filter((d) => existsSync(join(d, 'done.json'))).length >= 2 && midTraining(out) !== undefined, 150_000);
    const interrupted = midTraining(out)!;
    first.child.kill('SIGKILL');
    await first.exited;
    const doneBefore = runDirs(out).filter((d) => existsSync(join(d, 'done.json')));
    expect(doneBefore.length).toBeGreaterThanOrEqual(2);
    expect(existsSync(join(out, 'report', 'study.json'))).toBe(false);
    // Its train child stops with it (study/guard-node.ts): nothing keeps writing the run.
    await waitFor('the killed study\'s train child to exit', () => processesNaming(join(interrupted, 'train')).length === 0, 5_000);

    const status = await vitgpu(['study', 'status', out]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`${interrupted.split('/').pop()}\\s+interrupted\\s+checkpoint after epoch \\d/3`));
    expect(status.stdout).toMatch(/8 runs: \d done/);

    const second = await vitgpu(['study', 'run', plan, '--out', out], { timeoutMs: 300_000 });
    expect(second.code, second.stderr).toBe(0);
    for (const d of doneBefore) expect(attempts(d).filter((a) => a.event === 'start'), d).toHaveLength(1);
    expect(readFileSync(join(interrupted, 'steps.log'), 'utf8')).toMatch(/\$ vitgpu train --resume --out /);
    expect(readFileSync(join(interrupted, 'steps.log'), 'utf8')).toMatch(/resuming .* after epoch [12]/);

    // The report: every cell of every table, p-values for each comparison, figures beside it.
    const study = JSON.parse(readFileSync(join(out, 'report', 'study.json'), 'utf8'));
    localStudy = study;
    expect(study.runs).toHaveLength(8);
    expect(study.missing).toEqual([]);
    expect(study.cells).toHaveLength(8);
    for (const c of study.cells) {
      expect(c.mean, `${c.dataset} ${c.init} ${c.fraction}`).toBeGreaterThan(0);
      expect(c.lo).toBeLessThanOrEqual(c.mean);
      expect(c.hi).toBeGreaterThanOrEqual(c.mean);
      for (const [label, v] of Object.entries(c.labels) as [string, { mean: number | null }][]) expect(v.mean, `${c.dataset} ${label}`).not.toBeNull();
    }
    expect(study.tests).toHaveLength(4); // narrow vs scratch per dataset × fraction
    for (const t of study.tests) for (const l of t.labels) expect(l.pAdjusted).toBeGreaterThanOrEqual(l.p);
    // The half-size subsets are nested in nothing here, but sized as the subset rule says.
    const half = study.runs.find((r: { id: string }) => r.id === 'alpha--scratch--f0.5--s3');
    expect(half.trainImages).toBeGreaterThanOrEqual(27);
    expect(half.trainImages).toBeLessThan(54);
    expect(study.cross.filter((c: { train: string; test: string }) => c.train !== c.test)).toHaveLength(4);
    const md = readFileSync(join(out, 'report', 'report.md'), 'utf8');
    expect(md).not.toMatch(/\bn\/a\b/);
    expect(md).toMatch(/\| alpha \| 50% \| \d+\.\d\d ± \d+\.\d\d \| \d+\.\d\d ± \d+\.\d\d \|/);
    expect(md).toMatch(/p narrow > scratch \(BH\)/);
    for (const f of ['training-size.png', 'training-size.svg']) expect(existsSync(join(out, 'report', f)), f).toBe(true);
    for (const d of runDirs(out)) for (const f of ['curves.png', 'curves.svg', 'eval/roc.png', 'eval/roc.svg']) expect(existsSync(join(d, f)), `${d}/${f}`).toBe(true);
  }, 420_000);

  it('runs distributed on BullMQ with two workers: one SIGKILLed mid-run, one frozen while its run is handed out', async () => {
    expect(localStudy, 'the local study must have run first').not.toBeNull();
    const redis = await startRedis();
    const out = join(dir, 'queued');
    try {
      const study = spawnVitgpu(['study', 'run', plan, '--out', out, '--queue', redis.url]);
      children.push(study);
      const worker = (extra: string[]) => {
        const w = spawnVitgpu(['worker', '--queue', redis.url, '--lock-seconds', '2', '--lease-grace-seconds', '1', ...extra]);
        children.push(w);
        return w;
      };
      // 1. Worker A alone; SIGKILL it mid-training.
      const a = worker(['--lease-seconds', '30']);
      await waitFor('worker A mid-training', () => midTraining(out, `:${a.child.pid}:`) !== undefined, 120_000);
      const killedRun = midTraining(out, `:${a.child.pid}:`)!;
      a.child.kill('SIGKILL');
      const killedAt = Date.now();
      await a.exited;
      await waitFor('worker A\'s train child to exit', () => processesNaming(join(killedRun, 'train')).length === 0, 5_000);

      // 2. Worker B takes the stalled run over and resumes it from the checkpoint.
      const b = worker(['--lease-seconds', '30']);
      await waitFor('worker B to resume the killed run', () => attempts(killedRun).some((e) => e.event === 'start' && e.owner.includes(`:${b.child.pid}:`)), 60_000);

      // 3. Worker C joins; freeze it (SIGSTOP) while it holds a run. Its job lock lapses, the queue hands
      //    the job to B, and B must wait on C's live lease instead of training beside it.
      const c = worker(['--lease-seconds', '120']);
      await waitFor('worker C to hold a run', () => runDirs(out).some((d) => !existsSync(join(d, 'done.json')) && existsSync(join(d, 'lease.json')) &&
        readFileSync(join(d, 'lease.json'), 'utf8').includes(`:${c.child.pid}:`)), 60_000);
      c.child.kill('SIGSTOP');
      await waitFor('worker B to wait on the frozen worker\'s run', () => new RegExp(`waiting, the run is held by [^\\n]*:${c.child.pid}:`).test(b.output()), 150_000);
      c.child.kill('SIGCONT');

      const end = await study.exited;
      expect(end.code, study.output()).toBe(0);
      const status = await vitgpu(['study', 'status', out]);
      expect(status.stdout, status.stderr).toMatch(/8 runs: 8 done/);

      // The killed run: started by A, resumed by B from its checkpoint after A died.
      const killed = attempts(killedRun);
      expect(killed[0].owner).toContain(`:${a.child.pid}:`);
      expect(killed.filter((e) => e.event === 'end' && e.outcome === 'done').map((e) => e.owner).join()).toContain(`:${b.child.pid}:`);
      expect(readFileSync(join(killedRun, 'steps.log'), 'utf8')).toMatch(/\$ vitgpu train --resume/);
      // No run directory was worked on by two workers at once: each start follows the previous
      // owner's end, or the previous owner's death (A, SIGKILLed).
      for (const d of runDirs(out)) {
        let holder: { owner: string } | null = null;
        for (const e of attempts(d)) {
          if (e.event === 'start') {
            if (holder) {
              expect(holder.owner, `${d}: ${e.owner} started while ${holder.owner} held it`).toContain(`:${a.child.pid}:`);
              expect(e.at).toBeGreaterThan(killedAt);
            }
            holder = e;
          } else holder = null;
        }
      }
      expect(numbers(JSON.parse(readFileSync(join(out, 'report', 'study.json'), 'utf8')))).toEqual(numbers(localStudy!));
      for (const w of [b, c]) w.child.kill('SIGTERM');
      await Promise.all([b.exited, c.exited]);
    } finally {
      await redis.stop();
    }
  }, 480_000);
});
