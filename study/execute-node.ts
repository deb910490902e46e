// Carrying out one run of the grid (Node): under the run directory's lease, `vitgpu train` (fresh, or
// --resume from the last checkpoint), `vitgpu eval` on the test split, the cross-dataset evals and the
// training-curve figure, each step skipped when its output is already there; done.json last. The
// steps are child processes of the real CLI, so a run is exactly what a user would have typed, its
// GPU memory is freed with its process, and a killed step resumes where `train --resume` resumes.
//
//   RUN/attempts.jsonl   one line per start and end of work on the run: owner, time, outcome
//   RUN/steps.log        the children's output
//   RUN/error.json       the last failure: its message and whether the run's input caused it

import { spawn } from 'node:child_process';
import { appendFile, mkdir, open, readFile, rm, stat, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VitgpuError } from '../engine/errors.js';
import { trainingCurvesSpec } from '../eval/plots/specs.js';
import { writeFigure } from '../eval/plots/render-node.js';
import { crossEvalArgs, crossTestsOf, evalArgs, runDir, trainArgs, type GridRun, type ResolvedPlan } from './grid.js';
import { guardEnv, Lease, type LeaseRecord } from './lease-node.js';

const BIN = fileURLToPath(new URL('../../bin/vitgpu.js', import.meta.url));
const GUARD = new URL('./guard-node.js', import.meta.url).href;

/** The run's own input is at fault (bad data, bad settings): retrying cannot help. */
export class RunInputError extends VitgpuError {}
/** The machine or the process failed (no adapter, killed, lease lost): another try may succeed. */
export class RunInfrastructureError extends VitgpuError {}

export interface Progress {
  phase: 'waiting' | 'train' | 'eval' | 'cross' | 'done';
  epoch?: number;
  epochs?: number;
  etaSeconds?: number;
  holder?: string;
}

export interface ExecuteOptions {
  studyDir: string;
  plan: ResolvedPlan;
  run: GridRun;
  owner: string;
  adapter?: string;
  leaseMs: number;
  leaseGraceMs?: number;
  log: (message: string) => void;
  onProgress?: (p: Progress) => void;
}

const exists = (p: string) => stat(p).then(() => true, () => false);

async function writeJson(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
  await rename(tmp, path);
}

export async function isRunDone(studyDir: string, id: string): Promise<boolean> {
  return exists(join(runDir(studyDir, id), 'done.json'));
}

/** Epochs logged so far and the mean seconds per epoch, from the training log. */
export async function trainingProgress(trainDir: string): Promise<{ epochs: number; secondsPerEpoch: number | null }> {
  const text = await readFile(join(trainDir, 'log.jsonl'), 'utf8').catch(() => '');
  // A line being appended may be read half-written: only whole lines count.
  const records = text.split('\n').flatMap((l) => {
    try {
      return [JSON.parse(l) as { seconds?: number }];
    } catch {
      return [];
    }
  });
  const secs = records.map((r) => r.seconds ?? NaN).filter(Number.isFinite);
  return { epochs: records.length, secondsPerEpoch: secs.length ? secs.reduce((a, b) => a + b, 0) / secs.length : null };
}

/** Runs `vitgpu ARGS` as a guarded child; resolves on exit 0, throws the classified failure otherwise. */
async function step(args: string[], o: ExecuteOptions, lease: Lease, dir: string, abort: { kill?: () => void }): Promise<void> {
  const out = await open(join(dir, 'steps.log'), 'a');
  try {
    await out.write(`\n$ vitgpu ${args.map((a) => (a === '' || /\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}\n`);
    const env = { ...process.env, ...guardEnv(lease), ...(o.adapter ? { VITGPU_ADAPTER: o.adapter } : {}) };
    const child = spawn(process.execPath, ['--import', GUARD, BIN, ...args], { stdio: ['ignore', out.fd, out.fd, 'ipc'], env });
    abort.kill = () => child.kill('SIGKILL');
    const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit, reject) => {
      child.on('error', reject);
      child.on('exit', (c, s) => resolveExit({ code: c, signal: s }));
    });
    abort.kill = undefined;
    if (code === 0) return;
    if (lease.lost) throw new RunInfrastructureError(`${args[0]} stopped: the run's lease was lost (${lease.lost})`);
    const tail = (await readFile(join(dir, 'steps.log'), 'utf8')).split('\n').filter((l) => l.startsWith('vitgpu: ')).pop();
    if (signal) throw new RunInfrastructureError(`vitgpu ${args[0]} was killed (${signal})`);
    // Exit 2: no WebGPU adapter on this machine (cli/run.ts); 1: the command reported an error.
    if (code === 2) throw new RunInfrastructureError(tail?.slice(8) ?? `vitgpu ${args[0]}: no WebGPU adapter`);
    throw new RunInputError(tail ? `${args[0]}: ${tail.slice(8)}` : `vitgpu ${args[0]} failed (exit ${code}); see ${join(dir, 'steps.log')}`);
  } finally {
    await out.close();
  }
}

/**
 * Carries out a run (or what is left of it). Returns 'done' if it was already complete, 'ran' if this
 * call completed it. Throws RunInputError or RunInfrastructureError.
 */
export async function executeRun(o: ExecuteOptions): Promise<'done' | 'ran'> {
  const dir = runDir(o.studyDir, o.run.id);
  if (await isRunDone(o.studyDir, o.run.id)) return 'done';
  await mkdir(dir, { recursive: true });
  const abort: { kill?: () => void } = {};
  let lastHolder = '';
  const lease = await Lease.acquire(join(dir, 'lease.json'), {
    owner: o.owner,
    ttlMs: o.leaseMs,
    graceMs: o.leaseGraceMs,
    onWait: (h: LeaseRecord) => {
      if (h.owner !== lastHolder) {
        lastHolder = h.owner;
        o.log(`${o.run.id}: waiting, the run is held by ${h.owner}`);
      }
      o.onProgress?.({ phase: 'waiting', holder: h.owner });
    },
    onLost: (why) => {
      o.log(`${o.run.id}: lease lost (${why}); stopping`);
      abort.kill?.();
    },
  });
  const attempt = (event: string, extra: Record<string, unknown> = {}) =>
    appendFile(join(dir, 'attempts.jsonl'), `${JSON.stringify({ owner: o.owner, event, at: Date.now(), ...extra })}\n`);
  try {
    if (await isRunDone(o.studyDir, o.run.id)) return 'done';
    await attempt('start');
    const trainDir = join(dir, 'train');
    if (!(await exists(join(trainDir, 'summary.json')))) {
      const resume = await exists(join(trainDir, 'last', 'checkpoint.safetensors'));
      o.log(`${o.run.id}: ${resume ? 'resuming training from its checkpoint' : 'training'}`);
      const epochs = Number(o.plan.train.epochs ?? 100);
      const poll = setInterval(() => {
        void trainingProgress(trainDir).then((p) => {
          const eta = p.secondsPerEpoch === null ? undefined : Math.round(p.secondsPerEpoch * Math.max(0, epochs - p.epochs));
          o.onProgress?.({ phase: 'train', epoch: p.epochs, epochs, etaSeconds: eta });
        }, () => {});
      }, 2000);
      try {
        await step(resume ? ['train', '--resume', '--out', trainDir] : trainArgs(o.plan, o.run, trainDir), o, lease, dir, abort);
      } finally {
        clearInterval(poll);
      }
    }
    // Evaluations are cheap next to training and end with several files: an unfinished run redoes them.
    o.onProgress?.({ phase: 'eval' });
    await step(evalArgs(o.plan, trainDir, join(dir, 'eval')), o, lease, dir, abort);
    for (const c of crossTestsOf(o.plan, o.run)) {
      const out = join(dir, `cross-${c.test}`);
      o.onProgress?.({ phase: 'cross' });
      await step(crossEvalArgs(o.plan, c, trainDir, out), o, lease, dir, abort);
    }
    const summary = JSON.parse(await readFile(join(trainDir, 'summary.json'), 'utf8')) as { history: Parameters<typeof trainingCurvesSpec>[0] };
    await writeFigure(join(dir, 'curves'), trainingCurvesSpec(summary.history, { title: `${o.run.id}: training curves` }));
    if (lease.lost) throw new RunInfrastructureError(`${o.run.id}: the run's lease was lost (${lease.lost})`);
    await rm(join(dir, 'error.json'), { force: true });
    await writeJson(join(dir, 'done.json'), { id: o.run.id, owner: o.owner, finishedAt: new Date().toISOString() });
    await attempt('end', { outcome: 'done' });
    o.onProgress?.({ phase: 'done' });
    return 'ran';
  } catch (err) {
    const input = err instanceof RunInputError;
    await attempt('end', { outcome: input ? 'failed' : 'interrupted', error: (err as Error).message }).catch(() => {});
    if (!lease.lost) await writeJson(join(dir, 'error.json'), { message: (err as Error).message, input, owner: o.owner, at: new Date().toISOString() }).catch(() => {});
    throw err;
  } finally {
    await lease.release();
  }
}

/** The last recorded failure of a run, if any. */
export async function runError(studyDir: string, id: string): Promise<{ message: string; input: boolean; owner: string } | null> {
  try {
    return JSON.parse(await readFile(join(runDir(studyDir, id), 'error.json'), 'utf8'));
  } catch {
    return null;
  }
}
