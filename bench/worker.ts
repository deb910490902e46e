// One measurement in its own process: one case, one implementation. A fresh process per measurement
// keeps each implementation's buffer pools and memory peaks its own, and lets a peer that crashes
// under Dawn take down only its own line of the report.
//
// A worker prepares (inputs, first call and check, memory), reports `ready` to the orchestrator over
// IPC, then times rounds when asked (see timing.ts) until told to finish. Run by hand without IPC, it
// times FULL_TIMING's rounds back to back and prints its result after RESULT_MARKER.

import { createHash } from 'node:crypto';
import { loadavg } from 'node:os';
import { createNodeDevice, type Device, type ProfileReport, type Tensor } from '../engine/node.js';
import { CASES, TOLERANCE, type Case, type CheckResult, type HostTensor, type JaxMode, type Runner } from './cases.js';
import { loadJax, loadTfjs, peerAdapterDescription, type Impl, type MemoryTracker } from './peers.js';
import { samplePositions } from './reference.js';
import { FULL_TIMING, measureRound, summarize, type RoundSamples, type Timing } from './timing.js';

/** What a worker run by hand prints, after this marker, as one JSON line. */
export const RESULT_MARKER = '@@vitgpu-bench-result ';

/** Orchestrator → worker. */
export type WorkerRequest = { type: 'round'; minSamples: number; maxTime: number } | { type: 'finish' };
/** Worker → orchestrator. */
export type WorkerReply =
  | { type: 'ready'; result: WorkerResult }
  | { type: 'round'; round?: RoundSamples; error?: string };

export interface KernelUse {
  name: string;
  /** First 12 hex digits of the SHA-1 of its WGSL: tells kernel versions apart across runs. */
  sha: string;
}

export interface WorkerResult {
  caseId: string;
  impl: Impl;
  adapter: string;
  adapterInfo?: Device['info'];
  mode?: string;
  timing?: Timing;
  peakBytes: number | null;
  memorySource?: string;
  check?: CheckResult;
  /** Each output at fixed sampled positions, for comparing implementations with one another. */
  samples?: number[][];
  /** vitgpu: the kernels the case dispatched. */
  kernels?: KernelUse[];
  /** vitgpu with --profile: one extra call, profiled after the measured ones. */
  profile?: ProfileReport;
  /** vitgpu: bytes still live after a call that should have freed everything it made. */
  leakBytes?: number;
  /** Remarks on the measurement (jax-js: both modes' warm calls and which was timed; a mode that failed). */
  notes: string[];
  error?: string;
  loadavg: { start: number; end: number };
  wallSeconds: number;
  /** Seconds spent in each phase (setup: device, inputs, peer loading; first: first call, compiles included). */
  phases: Record<string, number>;
}

/** Entries of each output compared across implementations. */
export const CROSS_SAMPLES = 256;

function errorText(err: unknown): string {
  const e = err as Error;
  const text = e?.message ?? String(err);
  return text.split('\n').slice(0, 6).join(' | ');
}

function vitgpuTracker(device: Device): MemoryTracker {
  let before = 0;
  return {
    source: 'vitgpu BufferPool: bytes of live (not pooled) buffers, size-class rounded (device.memory().peakBytes)',
    start() {
      before = device.memory().liveBytes;
      device.pool.resetPeak();
    },
    stop: () => device.memory().peakBytes - before,
  };
}

/** Records every kernel the device dispatches from now on; the returned function lists them. */
function captureKernels(device: Device): () => KernelUse[] {
  const seen = new Map<string, KernelUse>();
  const original = device.pipeline.bind(device);
  device.pipeline = (kernel) => {
    if (!seen.has(kernel.source)) {
      seen.set(kernel.source, { name: kernel.name, sha: createHash('sha1').update(kernel.source).digest('hex').slice(0, 12) });
    }
    return original(kernel);
  };
  return () => [...seen.values()];
}

/** One runner measured: first call (compiles) and check, then two warm calls (memory on the second). */
interface Measured {
  runner: Runner;
  mode: string;
  check: CheckResult;
  samples: number[][];
  peakBytes: number | null;
  leakBytes?: number;
  /** The faster of the two warm calls, in ms (picks jax-js's mode before the full timing). */
  warmMs?: number;
  error?: string;
  phases: Record<string, number>;
}

async function prepareRunner(spec: Case, host: HostTensor[], runner: Runner, tracker: MemoryTracker, device: Device | null): Promise<Measured> {
  const phases: Record<string, number> = {};
  let t = performance.now();
  const lap = (name: string) => {
    const now = performance.now();
    phases[name] = (now - t) / 1e3;
    t = now;
    return phases[name] * 1e3;
  };
  const outputs = await runner.outputs();
  lap('first');
  const check = spec.check(host, outputs);
  const samples = outputs.map((o) => samplePositions(o.length, CROSS_SAMPLES, 777).map((p) => o[p]));
  const m: Measured = { runner, mode: runner.mode, check, samples, peakBytes: null, phases };
  if (!check.ok) {
    const worst = check.outputs.filter((o) => o.relErr > TOLERANCE).map((o) => `${o.name} rel. error ${o.relErr.toExponential(2)}`);
    m.error = `numerical mismatch against the CPU reference (${worst.join(', ')}); not timed`;
    return m;
  }
  lap('check');
  await runner.run();
  const warm = lap('warm');
  const liveBefore = device?.memory().liveBytes ?? 0;
  tracker.start();
  await runner.run();
  m.peakBytes = tracker.stop();
  if (device) m.leakBytes = device.memory().liveBytes - liveBefore;
  m.warmMs = Math.min(warm, lap('memory'));
  return m;
}

/**
 * jaxMode 'best' prepares jax-js both through jit and eagerly and times the one whose warm call was
 * faster: neither is always ahead on this adapter (in trial runs eager won attention forward, jit won
 * attention forward+backward), and the comparison is meant to be against each peer at its best.
 */
export type JaxChoice = JaxMode | 'best';

export interface PreparedWorker {
  /** Everything but the timing (filled in by the orchestrator from the rounds). */
  result: WorkerResult;
  /** The runner to time; null when preparation failed (result.error says why). */
  runner: Runner | null;
  dispose(): void;
}

export async function prepareWorker(caseId: string, impl: Impl, jaxMode: JaxChoice = 'best', profile = false): Promise<PreparedWorker> {
  const started = performance.now();
  const spec = CASES.find((c) => c.id === caseId);
  if (!spec) throw new Error(`unknown case ${caseId}`);
  const result: WorkerResult = { caseId, impl, adapter: '', peakBytes: null, notes: [], loadavg: { start: loadavg()[0], end: 0 }, wallSeconds: 0, phases: {} };
  const runners: Runner[] = [];
  const dispose = () => {
    for (const r of runners.splice(0)) {
      try {
        r.dispose();
      } catch {
        // Disposal errors after a failure add nothing.
      }
    }
  };
  let chosenRunner: Runner | null = null;
  try {
    // Inputs always come from vitgpu's seeded generator, so every implementation sees the same numbers.
    // No kept packs (engine/derived.ts): each timed matmul packs its B, as a product with a new B does
    // (the peers have no such cache, and a training step's operands are new at every call).
    const device = await createNodeDevice({ maxDerivedBytes: 0 });
    const tensors: Tensor[] = spec.inputs.map((s) => device.randn(s.shape, { seed: s.seed, mean: s.mean, std: s.std }));
    const host: HostTensor[] = await Promise.all(tensors.map(async (t, i) => ({ data: await t.data(), shape: spec.inputs[i].shape })));

    const measured: Measured[] = [];
    if (impl === 'vitgpu') {
      result.adapter = device.name;
      result.adapterInfo = device.info;
      const kernels = captureKernels(device);
      const tracker = vitgpuTracker(device);
      result.memorySource = tracker.source;
      result.phases.setup = (performance.now() - started) / 1e3;
      const runner = spec.vitgpu(device, tensors);
      runners.push(runner);
      measured.push(await prepareRunner(spec, host, runner, tracker, device));
      result.kernels = kernels();
      if (profile && !measured[0].error) {
        const session = device.profile();
        await runner.run();
        result.profile = await session.stop();
      }
    } else {
      for (const t of tensors) t.dispose();
      device.destroy();
      result.adapter = await peerAdapterDescription();
      if (impl === 'tfjs-webgpu') {
        const peer = await loadTfjs();
        result.memorySource = peer.memory.source;
        result.phases.setup = (performance.now() - started) / 1e3;
        const runner = spec.tfjs(peer.tf, host);
        runners.push(runner);
        measured.push(await prepareRunner(spec, host, runner, peer.memory, null));
      } else {
        const peer = await loadJax();
        result.memorySource = peer.memory.source;
        result.phases.setup = (performance.now() - started) / 1e3;
        for (const mode of jaxMode === 'best' ? (['jit', 'eager'] as const) : [jaxMode]) {
          try {
            const runner = spec.jax(peer.jax, host, mode);
            runners.push(runner);
            measured.push(await prepareRunner(spec, host, runner, peer.memory, null));
          } catch (err) {
            if (jaxMode !== 'best') throw err;
            result.notes.push(`${mode} failed: ${errorText(err)}`);
          }
        }
      }
    }

    const ready = measured.filter((m) => m.warmMs !== undefined && !m.error);
    const chosen = ready.length ? ready.reduce((a, b) => (b.warmMs! < a.warmMs! ? b : a)) : measured[0];
    if (!chosen) throw new Error(result.notes.join('; ') || 'nothing was measured');
    if (measured.length > 1) {
      result.notes.push(`warm call: ${measured.map((m) => `${m.mode} ${m.warmMs !== undefined ? `${m.warmMs.toFixed(0)} ms` : m.error}`).join(', ')}; timed: ${chosen.mode}`);
    }
    result.mode = chosen.mode;
    result.check = chosen.check;
    result.samples = chosen.samples;
    result.peakBytes = chosen.peakBytes;
    if (chosen.leakBytes !== undefined) result.leakBytes = chosen.leakBytes;
    Object.assign(result.phases, chosen.phases);
    if (chosen.error) result.error = chosen.error;
    else chosenRunner = chosen.runner;
  } catch (err) {
    result.error = errorText(err);
  }
  result.wallSeconds = (performance.now() - started) / 1e3;
  return { result, runner: chosenRunner, dispose };
}

/** Runs a worker: over IPC when the orchestrator started it, else standalone (times, prints, exits). */
export async function serveWorker(caseId: string, impl: Impl, jaxMode: JaxChoice, profile = false): Promise<void> {
  const prepared = await prepareWorker(caseId, impl, jaxMode, profile);
  const { result, runner } = prepared;
  const send = process.send?.bind(process);
  if (!send) {
    if (runner && !result.error) {
      try {
        const rounds: RoundSamples[] = [];
        for (let i = 0; i < FULL_TIMING.rounds; i++) rounds.push(await measureRound(`${caseId} ${impl}`, () => runner.run(), FULL_TIMING));
        result.timing = summarize(rounds);
      } catch (err) {
        result.error = errorText(err);
      }
    }
    prepared.dispose();
    result.loadavg.end = loadavg()[0];
    process.stdout.write(`${RESULT_MARKER}${JSON.stringify(result)}\n`, () => process.exit(0));
    return;
  }
  const reply = (msg: WorkerReply) => new Promise<void>((done) => send(msg, undefined, {}, () => done()));
  await reply({ type: 'ready', result });
  process.on('message', (msg: WorkerRequest) => {
    void (async () => {
      if (msg.type === 'finish') {
        prepared.dispose();
        process.exit(0);
      }
      if (!runner) {
        await reply({ type: 'round', error: result.error ?? 'not prepared' });
        return;
      }
      try {
        await reply({ type: 'round', round: await measureRound(`${caseId} ${impl}`, () => runner.run(), msg) });
      } catch (err) {
        await reply({ type: 'round', error: errorText(err) });
      }
    })();
  });
}
