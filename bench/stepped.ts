// Model workers driven call by call, so that vitgpu's and PyTorch's timed calls alternate
// (`npm run bench -- --models`; `--sequential` runs each worker's calls back to back instead).
//
// Why: this host's speed drifts by up to 2× within minutes (bench/RESULTS.md), and a worker that runs
// all its calls and then hands over to the other compares two different machines. Alternated, call i
// of each runs within seconds of the other, and the ratio of each pair is a same-phase ratio. The
// order within a pair flips every pair (A B, B A, A B ...), so a steady drift favours neither.
//
// Protocol (both workers, one JSON object per line after STEP_MARKER on stdout; commands on stdin):
//   worker: {"ready": true, "warmupMs": x}   after setup and the warm-up call
//   parent: call    →  worker: {"ms": x}    one timed call
//   parent: end     →  worker: {"result": ModelResult}, then it exits
//   worker: {"error": "..."}                 at any point, then it exits

import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export const STEP_MARKER = '@@model-step ';

export type StepMessage = { ready: true; warmupMs: number } | { ms: number } | { result: unknown } | { error: string };

/** The worker side: prints one message. */
export function emitStep(msg: StepMessage): void {
  process.stdout.write(`${STEP_MARKER}${JSON.stringify(msg)}\n`);
}

/** The worker side: yields each command line from the parent until stdin closes. */
export async function* stepCommands(): AsyncGenerator<string> {
  for await (const line of createInterface({ input: process.stdin })) {
    const cmd = line.trim();
    if (cmd) yield cmd;
  }
}

export class StepFailure extends Error {}

/** The parent side: one worker process. */
export class SteppedWorker {
  private readonly child: ChildProcess;
  private readonly queue: StepMessage[] = [];
  private waiter: ((m: StepMessage | null) => void) | null = null;
  private exited = false;
  private stderr = '';

  constructor(cmd: string, args: string[]) {
    this.child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      if (!line.startsWith(STEP_MARKER)) return;
      try {
        this.deliver(JSON.parse(line.slice(STEP_MARKER.length)) as StepMessage);
      } catch {
        this.deliver({ error: `not a message: ${line.slice(0, 200)}` });
      }
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    this.child.on('close', (code, signal) => {
      this.exited = true;
      const tail = this.stderr.split('\n').filter((l) => l.trim() && !l.startsWith('Warning: max')).slice(-3).join(' | ');
      this.deliver({ error: `exited with ${signal ?? `code ${code}`}${tail ? `: ${tail}` : ''}` });
    });
    this.child.stdin!.on('error', () => {}); // a dead worker's pipe: its close reports it
  }

  private deliver(m: StepMessage): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w(m);
    } else this.queue.push(m);
  }

  private next(timeoutS: number): Promise<StepMessage> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        this.kill();
        resolve({ error: `no answer within ${timeoutS} s` });
      }, timeoutS * 1e3);
      this.waiter = (m) => {
        clearTimeout(timer);
        resolve(m ?? { error: 'exited' });
      };
    });
  }

  private async expect<K extends 'ready' | 'ms' | 'result'>(key: K, timeoutS: number): Promise<Extract<StepMessage, Record<K, unknown>>> {
    const m = await this.next(timeoutS);
    if ('error' in m) throw new StepFailure(m.error);
    if (!(key in m)) throw new StepFailure(`expected "${key}", got ${JSON.stringify(m)}`);
    return m as Extract<StepMessage, Record<K, unknown>>;
  }

  /** Waits for setup and the warm-up call; returns the warm-up's milliseconds. */
  async ready(timeoutS: number): Promise<number> {
    return (await this.expect('ready', timeoutS)).warmupMs;
  }

  /** One timed call; returns its milliseconds. */
  async call(timeoutS: number): Promise<number> {
    if (this.exited) throw new StepFailure('the worker has exited');
    this.child.stdin!.write('call\n');
    return (await this.expect('ms', timeoutS)).ms;
  }

  /** Ends the worker and returns its result (peak memory, and what it measured besides the calls). */
  async end(timeoutS: number): Promise<unknown> {
    if (this.exited) throw new StepFailure('the worker has exited');
    this.child.stdin!.write('end\n');
    return (await this.expect('result', timeoutS)).result;
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }
}

/** Median of the per-pair ratios a[i] / b[i]. */
export function pairedRatio(a: readonly number[], b: readonly number[]): number | null {
  const n = Math.min(a.length, b.length);
  if (!n) return null;
  const r = Array.from({ length: n }, (_, i) => a[i] / b[i]).sort((x, y) => x - y);
  return n % 2 ? r[(n - 1) / 2] : (r[n / 2 - 1] + r[n / 2]) / 2;
}
