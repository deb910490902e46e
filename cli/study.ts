// `vitgpu study run|status|report`: the whole grid of a study in one command, locally or through a
// BullMQ queue (see study/).

import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { VitgpuError } from '../engine/errors.js';
import { runStudy } from '../study/study-node.js';
import { readResolvedPlan, DEFAULT_QUEUE_NAME } from '../study/queue-node.js';
import { statusTable, studyStatus } from '../study/status-node.js';
import { writeReport } from '../study/report-node.js';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { action } from './run.js';
import { positiveInt } from './options.js';

interface RunFlags {
  out: string;
  queue?: string;
  queueName: string;
  retryFailed?: boolean;
  adapter?: string;
  leaseSeconds: string;
}

/** The queue a study was run with (state.json), unless --queue names one. */
async function studyQueue(dir: string, url: string | undefined, name: string | undefined) {
  if (url) return { url, name: name ?? DEFAULT_QUEUE_NAME };
  const state = await readFile(join(dir, 'state.json'), 'utf8').then((t) => JSON.parse(t) as { queue: { url: string; name: string | null } | null }, () => null);
  return state?.queue ? { url: state.queue.url, name: name ?? state.queue.name ?? DEFAULT_QUEUE_NAME } : undefined;
}

export function registerStudy(program: Command): void {
  const study = program.command('study').description('run a whole study (datasets × initializations × training fractions × seeds) and report it');

  study
    .command('run')
    .description('check the plan, carry out every run (train, eval, cross-dataset tests) and write the report; continues a killed study')
    .argument('<plan>', 'plan file (YAML; see examples/study.yaml)')
    .requiredOption('--out <dir>', 'study directory: one folder per run, state.json, report/ (with --queue: on storage every worker shares)')
    .option('--queue <redis-url>', 'put the runs on a BullMQ queue in Redis (redis://HOST:PORT) for `vitgpu worker`s instead of running them here')
    .option('--queue-name <name>', 'BullMQ queue name', DEFAULT_QUEUE_NAME)
    .option('--retry-failed', 'run again the runs that failed on their input before')
    .addOption(new Option('--adapter <name>', 'WebGPU adapter for local runs (see `vitgpu devices`)').env('VITGPU_ADAPTER'))
    .option('--lease-seconds <n>', 'lease on a run directory, renewed every quarter of it', '60')
    .action(action(async (plan: string, f: RunFlags) => {
      const { files, failed } = await runStudy(plan, f.out, {
        queue: f.queue ? { url: f.queue, name: f.queueName } : undefined,
        retryFailed: Boolean(f.retryFailed),
        adapter: f.adapter,
        leaseMs: positiveInt(f.leaseSeconds, '--lease-seconds')! * 1000,
        log: (m) => console.error(m),
      });
      console.log(`wrote ${files.join(', ')}`);
      if (failed.length) throw new VitgpuError(`${failed.length} run(s) failed: ${failed.map((r) => `${r.id} (${r.error})`).join('; ')}`);
    }));

  study
    .command('status')
    .description('a table of the study\'s runs: queued, running (epoch, ETA), interrupted, done, failed with its error')
    .argument('<study-dir>', 'study directory')
    .option('--queue <redis-url>', 'read the queue too (default: the one the study was run with)')
    .option('--queue-name <name>', 'BullMQ queue name')
    .option('--json', 'print the rows as JSON')
    .action(action(async (dir: string, f: { queue?: string; queueName?: string; json?: boolean }) => {
      const plan = await readResolvedPlan(resolve(dir));
      const queue = await studyQueue(resolve(dir), f.queue, f.queueName);
      const rows = await studyStatus(resolve(dir), plan, queue).catch(async (err: Error) => {
        if (!queue || f.queue) throw err;
        // The queue the study was run with is gone (Redis stopped): the directory still tells most.
        console.error(`vitgpu: ${err.message}; showing the study directory only`);
        return studyStatus(resolve(dir), plan, undefined);
      });
      console.log(f.json ? JSON.stringify(rows, null, 2) : statusTable(rows));
    }));

  study
    .command('report')
    .description('write the report from the runs finished so far (study run writes it at the end)')
    .argument('<study-dir>', 'study directory')
    .action(action(async (dir: string) => {
      const { files } = await writeReport(resolve(dir), await readResolvedPlan(resolve(dir)));
      console.log(`wrote ${files.join(', ')}`);
    }));
}
