// `vitgpu study run` (Node): check the plan in full, lay out the study directory, carry the runs out
// (locally, in order, or through a BullMQ queue), and write the report.
//
// The same command continues a killed study: finished runs (done.json) are never redone, a run killed
// mid-training resumes from its checkpoint, and a run whose settings changed is refused rather than
// mixed.

import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { VitgpuError } from '../engine/errors.js';
import { loadPlan } from './plan-node.js';
import { evalArgs, expandGrid, runDir, trainArgs, type GridRun, type ResolvedPlan } from './grid.js';
import { executeRun, isRunDone, runError, RunInputError } from './execute-node.js';
import { enqueueRuns, jobStates, type QueueOptions } from './queue-node.js';
import { studyStatus, type RunStatus } from './status-node.js';
import { writeReport } from './report-node.js';

export interface StudyOptions {
  queue?: QueueOptions;
  retryFailed?: boolean;
  adapter?: string;
  leaseMs?: number;
  log: (message: string) => void;
  /** Seconds between progress polls in queue mode. */
  pollSeconds?: number;
}

async function writeJson(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
  await rename(tmp, path);
}

/** Each run's command lines, recorded at its first start; a resumed study must give the same ones. */
async function checkRunSpec(studyDir: string, plan: ResolvedPlan, run: GridRun): Promise<void> {
  const dir = runDir(studyDir, run.id);
  const spec = { train: trainArgs(plan, run, join(dir, 'train')), eval: evalArgs(plan, join(dir, 'train'), join(dir, 'eval')) };
  const file = join(dir, 'spec.json');
  const old = await readFile(file, 'utf8').then((t) => JSON.parse(t) as typeof spec, () => null);
  if (old && JSON.stringify(old) !== JSON.stringify(spec)) {
    const a = old.train.join(' ');
    const b = spec.train.join(' ');
    throw new VitgpuError(`${dir} was started with other settings than the plan now gives (was: vitgpu ${a === b ? old.eval.join(' ') : a}); ` +
      'finish it with the old plan, or give the changed plan another --out');
  }
  if (!old) {
    await mkdir(dir, { recursive: true });
    await writeJson(file, spec);
  }
}

export async function writeState(studyDir: string, plan: ResolvedPlan, rows: RunStatus[], queue: QueueOptions | undefined): Promise<void> {
  await writeJson(join(studyDir, 'state.json'), {
    plan: plan.name ?? null,
    planFile: plan.file,
    queue: queue ? { url: queue.url, name: queue.name ?? null } : null,
    updatedAt: new Date().toISOString(),
    runs: rows,
  });
}

/** Runs the study to the end (or until every remaining run has failed) and writes its report. */
export async function runStudy(planFile: string, studyDirArg: string, o: StudyOptions): Promise<{ files: string[]; failed: RunStatus[] }> {
  const studyDir = resolve(studyDirArg);
  const { plan, yaml, notes, crossFiles } = await loadPlan(planFile, studyDir);
  const runs = expandGrid(plan);
  await mkdir(join(studyDir, 'runs'), { recursive: true });
  for (const run of runs) await checkRunSpec(studyDir, plan, run);
  await writeFile(join(studyDir, 'plan.yaml'), yaml);
  await writeJson(join(studyDir, 'plan.json'), plan);
  await writeJson(join(studyDir, 'subsets.json'), notes);
  if (crossFiles.size) {
    await mkdir(join(studyDir, 'cross'), { recursive: true });
    for (const [name, text] of crossFiles) await writeFile(join(studyDir, 'cross', name), text);
  }
  for (const n of notes) o.log(`note: ${n.dataset} at ${n.fraction} (seed ${n.seed}): few positives: ${n.few.map((c) => `${c.label} ${c.positives}`).join(', ')}`);
  const done = (await Promise.all(runs.map((r) => isRunDone(studyDir, r.id)))).filter(Boolean).length;
  o.log(`${runs.length} runs (${done} done) in ${studyDir}${o.queue ? `, through the queue at ${o.queue.url}` : ', locally'}`);

  if (o.queue) await runQueued(studyDir, plan, runs, o);
  else await runLocal(studyDir, plan, runs, o);

  const rows = await studyStatus(studyDir, plan, o.queue);
  await writeState(studyDir, plan, rows, o.queue);
  const { files } = await writeReport(studyDir, plan);
  return { files, failed: rows.filter((r) => r.state === 'failed') };
}

async function runLocal(studyDir: string, plan: ResolvedPlan, runs: GridRun[], o: StudyOptions): Promise<void> {
  const owner = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  for (const [k, run] of runs.entries()) {
    if (await isRunDone(studyDir, run.id)) continue;
    const err = await runError(studyDir, run.id);
    if (err?.input && !o.retryFailed) {
      o.log(`[${k + 1}/${runs.length}] ${run.id}: failed before (${err.message}); --retry-failed runs it again`);
      continue;
    }
    o.log(`[${k + 1}/${runs.length}] ${run.id}`);
    await writeState(studyDir, plan, await studyStatus(studyDir, plan, undefined), undefined);
    try {
      await executeRun({ studyDir, plan, run, owner, adapter: o.adapter, leaseMs: o.leaseMs ?? 60_000, log: o.log });
    } catch (e) {
      // A run's own bad input fails that run; a failing machine stops the study (every run would fail).
      if (!(e instanceof RunInputError)) throw e;
      o.log(`${run.id} failed: ${e.message}`);
    }
  }
}

async function runQueued(studyDir: string, plan: ResolvedPlan, runs: GridRun[], o: StudyOptions): Promise<void> {
  const queue = o.queue!;
  const added = await enqueueRuns(queue, studyDir, runs, { retryFailed: o.retryFailed });
  o.log(`queued ${added} run(s); start workers with: vitgpu worker --queue ${queue.url}${queue.name ? ` --queue-name ${queue.name}` : ''}`);
  let last = '';
  for (;;) {
    const rows = await studyStatus(studyDir, plan, queue);
    await writeState(studyDir, plan, rows, queue);
    const count = (s: string) => rows.filter((r) => r.state === s).length;
    const line = `done ${count('done')}/${rows.length}, running ${count('running')}, queued ${count('queued') + count('interrupted')}, failed ${count('failed')}`;
    if (line !== last) o.log(line);
    last = line;
    if (rows.every((r) => r.state === 'done' || r.state === 'failed')) return;
    const jobs = await jobStates(queue, studyDir, runs);
    if (runs.some((r) => !jobs.has(r.id) && rows.find((x) => x.id === r.id)!.state !== 'done')) {
      // A job vanished (the queue was emptied): put the unfinished runs back.
      await enqueueRuns(queue, studyDir, runs, {});
    }
    await new Promise((r) => setTimeout(r, (o.pollSeconds ?? 2) * 1000));
  }
}
