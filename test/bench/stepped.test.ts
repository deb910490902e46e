// The call-by-call protocol that alternates vitgpu's and PyTorch's timed calls in
// `npm run bench -- --models` (bench/stepped.ts), against real child processes: a worker that follows
// it, one that dies mid-run, and one that never answers.

import { describe, expect, it } from 'vitest';
import { STEP_MARKER, StepFailure, SteppedWorker, pairedRatio } from '../../bench/stepped.js';

/** A worker in plain JS: ready after a "warm-up", `call` answers 10, 20, ...; `die` exits with 3. */
const WORKER = `
const out = (m) => process.stdout.write(${JSON.stringify(STEP_MARKER)} + JSON.stringify(m) + '\\n');
console.log('a line that is not a message');
out({ ready: true, warmupMs: 5 });
let n = 0;
require('readline').createInterface({ input: process.stdin }).on('line', (l) => {
  if (l === 'call' && n === Number(process.argv[1])) { console.error('boom at call ' + n); process.exit(3); }
  if (l === 'call') out({ ms: ++n * 10 });
  if (l === 'end') { out({ result: { calls: n } }); process.exit(0); }
});`;

const worker = (dieAt?: number) => new SteppedWorker(process.execPath, ['-e', WORKER, String(dieAt ?? 'never')]);

describe('SteppedWorker', () => {
  it('runs ready, calls and end in turn, skipping lines that are not messages', async () => {
    const w = worker();
    expect(await w.ready(20)).toBe(5);
    expect(await w.call(20)).toBe(10);
    expect(await w.call(20)).toBe(20);
    expect(await w.end(20)).toEqual({ calls: 2 });
  });

  it('reports a worker that dies with its exit code and the end of its stderr', async () => {
    const w = worker(1);
    await w.ready(20);
    expect(await w.call(20)).toBe(10);
    const err = await w.call(20).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StepFailure);
    expect((err as Error).message).toMatch(/exited with code 3: boom at call 1/);
    await expect(w.call(20)).rejects.toThrow(/has exited/);
  });

  it('reports a garbled message instead of throwing', async () => {
    const w = new SteppedWorker(process.execPath, ['-e', `console.log(${JSON.stringify(STEP_MARKER)} + '{oops'); setTimeout(() => {}, 60000)`]);
    await expect(w.ready(20)).rejects.toThrow(/not a message: @@model-step \{oops/);
    w.kill();
  });

  it('gives up on a worker that does not answer, and kills it', async () => {
    const w = new SteppedWorker(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    await expect(w.ready(0.3)).rejects.toThrow(/no answer within 0.3 s/);
  });
});

describe('pairedRatio', () => {
  it('is the median of the per-pair ratios', () => {
    expect(pairedRatio([2, 4, 6], [1, 1, 2])).toBe(3);
    expect(pairedRatio([2, 4, 6, 8], [1, 1, 1, 1])).toBe(5);
    // Pairs only: a side with more calls is cut to the other's count.
    expect(pairedRatio([3, 100], [1])).toBe(3);
    expect(pairedRatio([], [1])).toBeNull();
  });
});
