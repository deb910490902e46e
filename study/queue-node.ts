// The study's runs on a BullMQ queue in Redis (Node), for many machines or GPUs.
//
// - `study run --queue redis://HOST:PORT` adds one job per unfinished run (job id = study + run, so
//   adding again is a no-op) and waits for them; `vitgpu worker` takes jobs and carries the runs out in
//   the shared study directory (execute-node.ts).
// - A worker that dies (SIGKILL, lost machine) stops renewing its job lock; BullMQ's stalled-job
//   check hands the job to another worker, which takes the run's lease over once it is stale and
//   continues training from the last checkpoint. A worker alive but frozen keeps its lease until it
//   expires, so the second worker waits instead of training beside it.
// - Retries: a run that fails on its own input (train or eval reports an error) throws BullMQ's
//   UnrecoverableError and fails once, with its message. Failures of the machine (no adapter, a child
//   killed, the lease lost) are retried: `attempts` with exponential backoff.

import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { VitgpuError } from '../engine/errors.js';
import { expandGrid, type GridRun, type ResolvedPlan } from './grid.js';
import { executeRun, isRunDone, RunInputError, type Progress } from './execute-node.js';

export const DEFAULT_QUEUE_NAME = 'vitgpu-study';

export interface RunJob {
  studyDir: string;
  runId: string;
}

/** Redis client options from redis://[user:password@]host:port[/db]. */
export function redisOptions(url: string): RedisOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new VitgpuError(`--queue ${url}: not a URL; expected redis://HOST:PORT`);
  }
  if (u.protocol !== 'redis:') throw new VitgpuError(`--queue ${url}: expected redis://HOST:PORT`);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    db,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    // BullMQ workers block on Redis; they must not give up on a command.
    maxRetriesPerRequest: null,
    // Fail fast when the server is not there, instead of retrying forever.
    retryStrategy: (times: number) => (times > 5 ? null : 200 * times),
  };
}

/** A client for BullMQ (which, in an ES module, takes a constructed client rather than options). */
export function redisClient(url: string): Redis {
  const client = new Redis(redisOptions(url));
  client.on('error', () => {}); // reported through the Queue or Worker that uses it
  return client;
}

export function jobId(studyDir: string, runId: string): string {
  return `${createHash('sha1').update(resolve(studyDir)).digest('hex').slice(0, 12)}.${runId}`;
}

export interface QueueOptions {
  url: string;
  name?: string;
}

async function withQueue<T>(q: QueueOptions, body: (queue: Queue) => Promise<T>): Promise<T> {
  const client = redisClient(q.url);
  const queue = new Queue(q.name ?? DEFAULT_QUEUE_NAME, { connection: client });
  queue.on('error', () => {});
  try {
    await queue.waitUntilReady().catch((err: Error) => {
      throw new VitgpuError(`--queue ${q.url}: cannot reach Redis (${err.message})`);
    });
    return await body(queue);
  } finally {
    await queue.close().catch(() => {});
    client.disconnect();
  }
}

/** Adds a job for every run not done yet; jobs of failed runs are retried only with retryFailed. */
export async function enqueueRuns(q: QueueOptions, studyDir: string, runs: GridRun[], opts: { retryFailed?: boolean; attempts?: number } = {}): Promise<number> {
  return withQueue(q, async (queue) => {
    let added = 0;
    for (const run of runs) {
      if (await isRunDone(studyDir, run.id)) continue;
      const id = jobId(studyDir, run.id);
      const existing = await queue.getJob(id);
      if (existing) {
        const state = await existing.getState();
        if (state === 'failed' && opts.retryFailed) await existing.retry();
        if (state !== 'completed') continue;
        await existing.remove(); // completed, yet the run is not done (its folder was removed): again
      }
      await queue.add('run', { studyDir: resolve(studyDir), runId: run.id } satisfies RunJob, {
        jobId: id,
        attempts: opts.attempts ?? 3,
        backoff: { type: 'exponential', delay: 10_000 },
        removeOnComplete: false,
        removeOnFail: false,
      });
      added++;
    }
    return added;
  });
}

export interface JobView {
  state: string;
  progress: Progress | null;
  failedReason: string | null;
  attemptsMade: number;
}

/** The queue's view of each run's job (absent: no job). */
export async function jobStates(q: QueueOptions, studyDir: string, runs: GridRun[]): Promise<Map<string, JobView>> {
  return withQueue(q, async (queue) => {
    const out = new Map<string, JobView>();
    for (const run of runs) {
      const job = await queue.getJob(jobId(studyDir, run.id));
      if (!job) continue;
      const progress = typeof job.progress === 'object' && job.progress !== null ? (job.progress as unknown as Progress) : null;
      out.set(run.id, { state: await job.getState(), progress, failedReason: job.failedReason || null, attemptsMade: job.attemptsMade });
    }
    return out;
  });
}

export async function readResolvedPlan(studyDir: string): Promise<ResolvedPlan> {
  const file = join(studyDir, 'plan.json');
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new VitgpuError(`${file}: cannot read the study's plan (${err.code ?? err.message}); is the study directory shared with this machine?`);
  });
  return JSON.parse(text) as ResolvedPlan;
}

export interface WorkerOptions extends QueueOptions {
  adapter?: string;
  concurrency?: number;
  /** BullMQ lock duration: a worker silent this long is considered stalled (default 30 s). */
  lockMs?: number;
  /** Run-directory lease (default 60 s) and the grace past its expiry before another takes it. */
  leaseMs?: number;
  leaseGraceMs?: number;
  log?: (message: string) => void;
}

/** Takes and carries out runs until the returned stop() is called. */
export async function startWorker(o: WorkerOptions): Promise<{ id: string; stop: () => Promise<void> }> {
  const id = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}${o.adapter ? `:${o.adapter}` : ''}`;
  const log = o.log ?? ((m: string) => console.error(`[worker ${id}] ${m}`));
  const lockMs = o.lockMs ?? 30_000;
  const client = redisClient(o.url);
  const worker = new Worker<RunJob>(
    o.name ?? DEFAULT_QUEUE_NAME,
    async (job: Job<RunJob>) => {
      const plan = await readResolvedPlan(job.data.studyDir);
      const run = expandGrid(plan).find((r) => r.id === job.data.runId);
      if (!run) throw new UnrecoverableError(`${job.data.runId} is not a run of the study in ${job.data.studyDir}`);
      log(`took ${run.id} (attempt ${job.attemptsMade + 1})`);
      try {
        const result = await executeRun({
          studyDir: job.data.studyDir, plan, run, owner: id, adapter: o.adapter, leaseMs: o.leaseMs ?? 60_000, leaseGraceMs: o.leaseGraceMs, log,
          onProgress: (p) => void job.updateProgress(p as unknown as object).catch(() => {}),
        });
        log(`${run.id}: ${result === 'done' ? 'already done' : 'done'}`);
        return { result, worker: id };
      } catch (err) {
        log(`${run.id}: ${(err as Error).message}`);
        if (err instanceof RunInputError) throw new UnrecoverableError((err as Error).message);
        throw err;
      }
    },
    { connection: client, concurrency: o.concurrency ?? 1, lockDuration: lockMs, stalledInterval: lockMs, maxStalledCount: 5 },
  );
  worker.on('error', (err) => log(`queue: ${err.message}`));
  await worker.waitUntilReady().catch((err: Error) => {
    throw new VitgpuError(`--queue ${o.url}: cannot reach Redis (${err.message})`);
  });
  log(`waiting for runs on ${o.url} (queue ${o.name ?? DEFAULT_QUEUE_NAME}, concurrency ${o.concurrency ?? 1})`);
  // Forced: a running child dies with this process (guard-node.ts) and its run resumes elsewhere.
  return {
    id,
    stop: async () => {
      await worker.close(true);
      client.disconnect();
    },
  };
}
