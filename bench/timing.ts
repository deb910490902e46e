// Timing with benchmark.js: deferred benchmarks whose function resolves only after the GPU has finished
// the call, so every sample includes execution, not just recording.
//
// The machine this runs on is shared (other builds and test suites come and go), so a case is not timed
// in one go per implementation: the orchestrator asks each implementation in turn for a short round of
// samples, several rounds over, and a change of load falls on all of them alike. `summarize` pools the
// rounds' samples.

import Benchmark from 'benchmark';

export interface TimingOptions {
  /** Rounds of sampling per implementation, interleaved with the other implementations' rounds. */
  rounds: number;
  /** Fewest benchmark.js samples per round. */
  minSamples: number;
  /** Seconds after which a round stops sampling (once minSamples are in). */
  maxTime: number;
}

export const FULL_TIMING: TimingOptions = { rounds: 4, minSamples: 1, maxTime: 0.6 };
export const QUICK_TIMING: TimingOptions = { rounds: 2, minSamples: 1, maxTime: 0.1 };

/** One round: benchmark.js samples, each the mean ms per call of one cycle. */
export interface RoundSamples {
  sampleMs: number[];
  calls: number;
  /** CPU time of the whole process over the round (JavaScript and lavapipe's threads alike), in ms. */
  cpuMs: number;
}

export interface Timing {
  /** Mean milliseconds per call (mean of the samples, as benchmark.js reports it). */
  ms: number;
  medianMs: number;
  minMs: number;
  /** Relative margin of error of the mean at 95%, in percent. */
  rme: number;
  samples: number;
  /** Calls timed in all (a sample of a fast op holds several calls). */
  calls: number;
  rounds: number;
  /**
   * Process CPU time per call, in ms. On lavapipe the "GPU" is this process's threads, so this is
   * what a call costs in CPU work whatever else the machine is doing: ms ≫ cpuMs / cores means the
   * call waited for cores that other jobs had.
   */
  cpuMs: number;
}

/** Times `step` (one call, resolved when its GPU work is done). A failing call rejects the round. */
export function measureRound(name: string, step: () => Promise<void>, options: Pick<TimingOptions, 'minSamples' | 'maxTime'>): Promise<RoundSamples> {
  return new Promise((resolve, reject) => {
    let failure: unknown = null;
    let calls = 0;
    const cpuStart = process.cpuUsage();
    const bench = new Benchmark(name, {
      defer: true,
      async: true,
      delay: 0,
      initCount: 1,
      minSamples: options.minSamples,
      maxTime: options.maxTime,
      // A function object (not source text) and no setup/teardown: benchmark.js then calls it by
      // reference instead of decompiling it, so closures work.
      fn(deferred: Benchmark.Deferred) {
        if (failure) {
          deferred.resolve();
          return;
        }
        calls++;
        step().then(
          () => deferred.resolve(),
          (err: unknown) => {
            failure = err;
            deferred.resolve();
          },
        );
      },
      onError() {
        reject(bench.error ?? new Error(`${name}: benchmark error`));
      },
      onComplete() {
        if (failure) reject(failure);
        else {
          const cpu = process.cpuUsage(cpuStart);
          resolve({ sampleMs: bench.stats.sample.map((s) => s * 1e3), calls, cpuMs: (cpu.user + cpu.system) / 1e3 });
        }
      },
    });
    bench.run();
  });
}

/** Two-sided 95% Student t quantiles for 1..30 degrees of freedom (benchmark.js uses the same table). */
const T95 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131,
  2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

export function summarize(rounds: readonly RoundSamples[]): Timing {
  const sample = rounds.flatMap((r) => r.sampleMs);
  const n = sample.length;
  if (n === 0) throw new Error('no samples');
  const mean = sample.reduce((a, b) => a + b, 0) / n;
  const variance = n > 1 ? sample.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1) : 0;
  const sem = Math.sqrt(variance / n);
  const critical = n > 1 ? (T95[n - 2] ?? 1.96) : 0;
  const sorted = [...sample].sort((a, b) => a - b);
  const median = n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  const calls = rounds.reduce((a, r) => a + r.calls, 0);
  return {
    ms: mean,
    medianMs: median,
    minMs: sorted[0],
    rme: mean > 0 ? ((sem * critical) / mean) * 100 : 0,
    samples: n,
    calls,
    rounds: rounds.length,
    cpuMs: rounds.reduce((a, r) => a + r.cpuMs, 0) / Math.max(1, calls),
  };
}
