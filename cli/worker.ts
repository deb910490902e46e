// `vitgpu worker`: takes a study's runs from a BullMQ queue and carries them out in the shared study
// directory, until stopped (SIGINT/SIGTERM). One per GPU machine, or one per GPU with --adapter.

import { Option, type Command } from 'commander';
import { DEFAULT_QUEUE_NAME, startWorker } from '../study/queue-node.js';
import { nonNegativeNumber, positiveInt } from './options.js';

interface WorkerFlags {
  queue: string;
  queueName: string;
  adapter?: string;
  concurrency: string;
  lockSeconds: string;
  leaseSeconds: string;
  leaseGraceSeconds: string;
}

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('take study runs from a BullMQ queue (vitgpu study run --queue) and train and evaluate them')
    .requiredOption('--queue <redis-url>', 'Redis server of the queue: redis://HOST:PORT')
    .option('--queue-name <name>', 'BullMQ queue name', DEFAULT_QUEUE_NAME)
    .addOption(new Option('--adapter <name>', 'WebGPU adapter whose name contains NAME, for one worker per GPU').env('VITGPU_ADAPTER'))
    .option('--concurrency <n>', 'runs at once on this worker', '1')
    .option('--lock-seconds <n>', 'BullMQ job lock: a worker silent this long has its run handed to another', '30')
    .option('--lease-seconds <n>', 'lease on a run directory, renewed every quarter of it', '60')
    .option('--lease-grace-seconds <n>', 'wait this long past a lease\'s expiry before taking it over (clock skew)', '10')
    .action(async (f: WorkerFlags) => {
      let worker: Awaited<ReturnType<typeof startWorker>>;
      try {
        worker = await startWorker({
          url: f.queue,
          name: f.queueName,
          adapter: f.adapter,
          concurrency: positiveInt(f.concurrency, '--concurrency'),
          lockMs: positiveInt(f.lockSeconds, '--lock-seconds')! * 1000,
          leaseMs: positiveInt(f.leaseSeconds, '--lease-seconds')! * 1000,
          leaseGraceMs: nonNegativeNumber(f.leaseGraceSeconds, '--lease-grace-seconds')! * 1000,
        });
      } catch (err) {
        console.error(`vitgpu: ${(err as Error).message}`);
        process.exit(1);
      }
      // Children stop with this process (study/guard-node.ts); their runs resume from checkpoints.
      const stop = async () => {
        await worker.stop();
        process.exit(0);
      };
      process.once('SIGINT', () => void stop());
      process.once('SIGTERM', () => void stop());
    });
}
