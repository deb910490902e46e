// `vitgpu study status` (Node): every run's state from the study directory (done.json, the lease,
// the training log, error.json) and, for a queued study, from its BullMQ job.
//
//   queued       not started, or waiting in the queue
//   running      its lease is held: who, epoch of epochs, ETA from the mean epoch time so far
//   interrupted  has a checkpoint but nobody holds it: continues from there when taken up again
//   done         complete; never redone
//   failed       with its error

import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { expandGrid, runDir, type ResolvedPlan } from './grid.js';
import { isRunDone, runError, trainingProgress } from './execute-node.js';
import { isStale, readLease } from './lease-node.js';
import { jobStates, type QueueOptions } from './queue-node.js';

export interface RunStatus {
  id: string;
  state: 'queued' | 'running' | 'interrupted' | 'done' | 'failed';
  owner?: string;
  epoch?: number;
  epochs?: number;
  etaSeconds?: number;
  job?: string;
  error?: string;
}

const exists = (p: string) => stat(p).then(() => true, () => false);

export async function studyStatus(studyDir: string, plan: ResolvedPlan, queue?: QueueOptions): Promise<RunStatus[]> {
  const runs = expandGrid(plan);
  const jobs = queue ? await jobStates(queue, studyDir, runs) : new Map();
  const epochs = Number(plan.train.epochs ?? 100);
  const out: RunStatus[] = [];
  for (const run of runs) {
    const dir = runDir(studyDir, run.id);
    const job = jobs.get(run.id);
    const row: RunStatus = { id: run.id, state: 'queued', ...(job ? { job: job.state } : {}) };
    out.push(row);
    if (await isRunDone(studyDir, run.id)) {
      row.state = 'done';
      continue;
    }
    const progress = await trainingProgress(join(dir, 'train'));
    if (progress.epochs > 0) {
      row.epoch = progress.epochs;
      row.epochs = epochs;
    }
    const lease = await readLease(join(dir, 'lease.json'));
    const err = await runError(studyDir, run.id);
    if (lease && !isStale(lease, Date.now(), 0)) {
      row.state = 'running';
      row.owner = lease.owner;
      if (progress.secondsPerEpoch !== null) row.etaSeconds = Math.round(progress.secondsPerEpoch * Math.max(0, epochs - progress.epochs));
    } else if (err?.input || job?.state === 'failed') {
      row.state = 'failed';
      row.error = err?.message ?? job?.failedReason ?? 'failed';
    } else if (await exists(join(dir, 'train', 'last', 'checkpoint.safetensors'))) {
      row.state = 'interrupted';
      if (err) row.error = err.message;
    }
  }
  return out;
}

function duration(s: number): string {
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** The status as a plain-text table. */
export function statusTable(rows: RunStatus[]): string {
  const body = rows.map((r) => {
    let detail = '';
    if (r.state === 'running') detail = `${r.owner}${r.epoch !== undefined ? `, epoch ${r.epoch}/${r.epochs}` : ', starting'}${r.etaSeconds !== undefined ? `, ETA ${duration(r.etaSeconds)}` : ''}`;
    else if (r.state === 'interrupted') detail = `checkpoint after epoch ${r.epoch ?? 0}/${r.epochs ?? '?'}; resumes from it${r.error ? ` (last: ${r.error})` : ''}`;
    else if (r.state === 'failed') detail = r.error ?? '';
    return [r.id, r.state, r.job ?? '', detail];
  });
  const header = ['run', 'state', 'queue', 'detail'];
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd();
  const counts = ['done', 'running', 'interrupted', 'queued', 'failed'].map((s) => `${rows.filter((r) => r.state === s).length} ${s}`).join(', ');
  return [line(header), ...body.map(line), '', `${rows.length} runs: ${counts}`].join('\n');
}
