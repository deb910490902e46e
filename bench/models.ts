// `npm run bench -- --models`: whole-model cases (ViT-B forward and training steps) for vitgpu and for
// PyTorch on the CPU (bench/models_torch.py through /usr/bin/python3), in the same run, one process per
// (case, implementation). These take seconds to minutes per call on a CPU adapter, so they are a mode
// of their own with few repetitions: a warm-up call (compiles, AdamW state), then `reps` timed calls.
// For each case both workers stay alive and their timed calls alternate (vitgpu, PyTorch, PyTorch,
// vitgpu, ...: bench/stepped.ts), and the ratio is the median of the pairs', as this host's speed
// drifts within minutes. `--sequential` (and the memory-only case) runs vitgpu's calls, then PyTorch's.

import { execFileSync, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AdamW, bceWithLogits, chromeTrace, createNodeDevice, formatProfileTable, mergeTraces, noGrad, tidy,
  type ChromeTrace, type ProfileReport, type Tensor,
} from '../engine/node.js';
import { VisionTransformer, presetConfig } from '../models/vit.js';
import { SteppedWorker, StepFailure, emitStep, pairedRatio, stepCommands } from './stepped.js';

export interface ModelCase {
  id: string;
  arch: 'vit-b16' | 'vit-b14';
  imageSize: number;
  batch: number;
  train: boolean;
  /** Only the warm-up call (its time includes compiles): for the peak memory of a large batch. */
  memoryOnly?: boolean;
}

export const MODEL_CASES: readonly ModelCase[] = [
  { id: 'vitb16-fwd', arch: 'vit-b16', imageSize: 224, batch: 8, train: false },
  { id: 'vitb16-train', arch: 'vit-b16', imageSize: 224, batch: 8, train: true },
  { id: 'vitb14-fwd', arch: 'vit-b14', imageSize: 224, batch: 8, train: false },
  { id: 'vitb16-fwd-512', arch: 'vit-b16', imageSize: 512, batch: 8, train: false },
  { id: 'vitb16-train-b30', arch: 'vit-b16', imageSize: 224, batch: 30, train: true, memoryOnly: true },
];

const LABELS = 14;
const ARCH = { 'vit-b16': { patch: 16 }, 'vit-b14': { patch: 14 } } as const;

/** What a worker is asked to do (vitgpu and PyTorch take the same JSON). */
export interface ModelSpec extends ModelCase {
  reps: number;
  threads: number;
  labels: number;
  /** Blocks (12 for ViT-B); fewer for quick iterations on a reduced-depth ViT-B. */
  depth: number;
  profile?: boolean;
  /** vitgpu only ('mixed': f16 matmul and attention operands, engine/precision.ts); PyTorch stays FP32. */
  precision?: 'f32' | 'mixed';
  /** Driven call by call over stdin/stdout (bench/stepped.ts), to alternate with the other worker. */
  stepped?: boolean;
}

export interface ModelResult {
  ms: number[];
  warmupMs: number;
  peakRssBytes: number;
  /** vitgpu: device.memory().peakBytes over the warm-up and timed calls (everything live, weights included). */
  devicePeakBytes?: number;
  threads?: number;
  torch?: string;
  loadavg: number;
  profile?: ProfileReport;
  /** vitgpu: the profiled call's wall time, to compare with the unprofiled ones. */
  profiledMs?: number;
  /** vitgpu: the precision it ran in. */
  precision?: 'f32' | 'mixed';
  /** The timed calls alternated with the other implementation's (bench/stepped.ts). */
  paired?: boolean;
  error?: string;
}

/** FLOPs of one call (2 per multiply-add): the forward's matmuls and attention; a train step counts 3×. */
export function modelFlops(c: ModelCase, depth = 12): number {
  const d = 768;
  const p = ARCH[c.arch].patch;
  const l = (c.imageSize / p) ** 2;
  const n = l + 1;
  const block = 24 * n * d * d + 4 * n * n * d;
  const forward = c.batch * (2 * l * 3 * p * p * d + depth * block + 2 * d * LABELS);
  return c.train ? 3 * forward : forward;
}

const MARKER = '@@vitgpu-model-result ';

/** The vitgpu side of one case, in this process; prints its result after MARKER (or, stepped, STEP_MARKER lines). */
export async function modelWorker(spec: ModelSpec): Promise<void> {
  const failed = (err: unknown): ModelResult => ({
    ms: [], warmupMs: 0, peakRssBytes: process.resourceUsage().maxRSS * 1024, loadavg: loadavg()[0], error: String((err as Error).message ?? err),
  });
  if (spec.stepped) {
    try {
      const run = await setUpVitgpu(spec);
      emitStep({ ready: true, warmupMs: run.warmupMs });
      const ms: number[] = [];
      for await (const cmd of stepCommands()) {
        if (cmd === 'call') emitStep({ ms: ms[ms.push(await run.call()) - 1] });
        else if (cmd === 'end') break;
      }
      emitStep({ result: await run.finish(ms) });
    } catch (err) {
      emitStep({ error: failed(err).error! });
    }
    return;
  }
  const result = await runVitgpu(spec).catch(failed);
  process.stdout.write(`${MARKER}${JSON.stringify(result)}\n`);
}

async function runVitgpu(spec: ModelSpec): Promise<ModelResult> {
  const run = await setUpVitgpu(spec);
  const ms: number[] = [];
  for (let i = 0; i < (spec.memoryOnly ? 0 : spec.reps); i++) ms.push(await run.call());
  return run.finish(ms);
}

/**
 * Records one timed call without waiting for it: a train step (forward, BCE, backward, AdamW) when
 * `opt` is given, else a forward without autograd. The caller syncs (bench/lab/overlap.lab.ts times
 * the recording alone).
 */
export function recordModelCall(model: VisionTransformer, images: Tensor, targets: Tensor, opt: AdamW | null): void {
  if (opt) {
    tidy(() => bceWithLogits(model.forward(images).logits!, targets).backward());
    opt.step();
    opt.zeroGrad();
  } else {
    tidy(() => noGrad(() => model.forward(images).logits!)).dispose();
  }
}

/** Builds the model and runs the warm-up call; `call` times one more, `finish` profiles and reports. */
async function setUpVitgpu(spec: ModelSpec): Promise<{ warmupMs: number; call: () => Promise<number>; finish: (ms: number[]) => Promise<ModelResult> }> {
  const device = await createNodeDevice();
  const config = presetConfig(spec.arch, { imageSize: spec.imageSize, labels: spec.labels, depth: spec.depth });
  const model = new VisionTransformer(device, config, { seed: 0 });
  if (spec.precision === 'mixed') model.precision = 'mixed';
  const images = device.randn([spec.batch, 3, spec.imageSize, spec.imageSize], { seed: 1 });
  const targets = device.tensor(Array.from({ length: spec.batch * spec.labels }, (_, i) => (i * 7) % 3 === 0 ? 1 : 0), [spec.batch, spec.labels]);
  const opt = spec.train ? new AdamW(model.parameters(), { lr: 1e-5, weightDecay: 0 }) : null;
  const call = async () => {
    const t = performance.now();
    recordModelCall(model, images, targets, opt);
    await device.sync();
    return performance.now() - t;
  };
  await device.sync();
  device.pool.resetPeak();
  const warmupMs = await call();
  const finish = async (ms: number[]): Promise<ModelResult> => {
    const devicePeakBytes = device.memory().peakBytes;
    let profile: ProfileReport | undefined;
    let profiledMs: number | undefined;
    if (spec.profile) {
      const session = device.profile();
      profiledMs = await call();
      profile = await session.stop();
    }
    return {
      ms, warmupMs, devicePeakBytes, peakRssBytes: process.resourceUsage().maxRSS * 1024, loadavg: loadavg()[0], profile, profiledMs, precision: spec.precision ?? 'f32',
    };
  };
  return { warmupMs, call, finish };
}

/** The package root (where bench/models_torch.py is), found upward from this file (dist/ or a snapshot of it). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'bench', 'models_torch.py'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('bench/models_torch.py not found above the benchmark');
    dir = up;
  }
  return dir;
}

const PYTHON = '/usr/bin/python3';

function torchVersion(): string | null {
  try {
    return execFileSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

/** Runs a child that prints one JSON result (after `marker` when given); its failure becomes `error`. */
function runChild(cmd: string, args: string[], marker: string | null, timeoutS: number): Promise<ModelResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutS * 1e3);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.split('\n').reverse().find((l) => (marker ? l.startsWith(marker) : l.startsWith('{')));
      if (line) return resolve(JSON.parse(marker ? line.slice(marker.length) : line) as ModelResult);
      const tail = err.split('\n').filter((l) => l.trim() && !l.startsWith('Warning: max')).slice(-3).join(' | ');
      resolve({ ms: [], warmupMs: 0, peakRssBytes: 0, loadavg: loadavg()[0], error: `exited with ${signal ?? `code ${code}`}${tail ? `: ${tail}` : ''}` });
    });
  });
}

export interface ModelFlags {
  only?: string[];
  reps: number;
  depth: number;
  torch: boolean;
  /** Each implementation's calls back to back, not alternated with the other's. */
  sequential?: boolean;
  precision?: 'f32' | 'mixed';
  profile?: string | boolean;
  json?: string;
  markdown?: string;
  timeoutS: number;
  command: string;
  git: string;
}

interface ModelRecord {
  caseId: string;
  impl: 'vitgpu' | 'pytorch-cpu';
  result: ModelResult;
  meanMs: number | null;
  imagesPerS: number | null;
  gflops: number | null;
}

const MiB = 2 ** 20;

function record(c: ModelCase, impl: ModelRecord['impl'], r: ModelResult, depth: number): ModelRecord {
  const ms = c.memoryOnly ? (r.error ? null : r.warmupMs) : r.ms.length ? r.ms.reduce((a, b) => a + b, 0) / r.ms.length : null;
  return {
    caseId: c.id, impl, result: r, meanMs: ms,
    imagesPerS: ms ? (c.batch * 1e3) / ms : null,
    gflops: ms ? modelFlops(c, depth) / ms / 1e6 : null,
  };
}

function tableRows(cases: readonly ModelCase[], records: ModelRecord[]): string[][] {
  const rows: string[][] = [];
  for (const c of cases) {
    const mine = records.filter((r) => r.caseId === c.id);
    const ours = mine.find((r) => r.impl === 'vitgpu');
    for (const r of mine) {
      const x = r.result;
      const pairs = ours?.result.paired && x.paired ? pairedRatio(ours.result.ms, x.ms) : null;
      const ratio = r.impl === 'vitgpu' ? ''
        : pairs ? `vitgpu ${pairs.toFixed(2)}× the time (median of ${Math.min(ours!.result.ms.length, x.ms.length)} alternated pairs)`
        : ours?.meanMs && r.meanMs ? `vitgpu ${(ours.meanMs / r.meanMs).toFixed(2)}× the time` : '';
      rows.push([
        c.id, `${c.arch} ${c.imageSize}px b${c.batch}${c.train ? ' train' : ' fwd'}`, x.precision === 'mixed' ? `${r.impl} (mixed)` : r.impl,
        x.error ? `ERROR: ${x.error}` : r.meanMs === null ? '—' : `${(r.meanMs / 1e3).toFixed(2)}${c.memoryOnly ? ' (first)' : ''}`,
        x.ms.length ? x.ms.map((m) => (m / 1e3).toFixed(2)).join(', ') : '',
        r.imagesPerS ? r.imagesPerS.toFixed(2) : '—', r.gflops ? r.gflops.toFixed(1) : '—',
        x.devicePeakBytes !== undefined ? (x.devicePeakBytes / MiB).toFixed(0) : '—', (x.peakRssBytes / MiB).toFixed(0),
        x.loadavg.toFixed(1), ratio,
      ]);
    }
  }
  return rows;
}

const HEADER = ['case', 'what', 'impl', 's/call', 'timed calls (s)', 'images/s', 'GFLOP/s', 'device peak MiB', 'peak RSS MiB', 'load', 'vs PyTorch'];

function formatRows(rows: string[][]): string {
  const w = HEADER.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [HEADER, ...rows].map((r) => r.map((c, i) => c.padEnd(w[i])).join('  ')).join('\n');
}

function writeRecords(f: ModelFlags, cases: readonly ModelCase[], records: ModelRecord[], ctx: { started: Date; threads: number; torch: string | null }): void {
  const meta = {
    benchmark: 'vitgpu npm run bench -- --models', date: ctx.started.toISOString(), updated: new Date().toISOString(), command: f.command,
    git: f.git, cpus: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}${process.env.LP_NATIVE_VECTOR_WIDTH ? `, LP_NATIVE_VECTOR_WIDTH=${process.env.LP_NATIVE_VECTOR_WIDTH}` : ''}`, threads: ctx.threads, torch: ctx.torch, depth: f.depth, reps: f.reps,
    flops: 'per call, 2 per multiply-add: patch embedding, the blocks\' matmuls and attention (4·N²·D), the head; a train step counts 3× the forward',
    memory: 'device peak: vitgpu BufferPool live bytes (weights, gradients, AdamW moments, activations), over warm-up and timed calls; peak RSS: the process\'s (lavapipe\'s buffers are host memory, so this counts them too)',
  };
  // PyTorch's records carry the alternated pairs' ratios (vitgpu's time over PyTorch's, call by call).
  const pairs = (r: ModelRecord) => {
    const ours = records.find((o) => o.caseId === r.caseId && o.impl === 'vitgpu');
    if (r.impl === 'vitgpu' || !ours?.result.paired || !r.result.paired) return {};
    const n = Math.min(ours.result.ms.length, r.result.ms.length);
    return { pairRatios: Array.from({ length: n }, (_, i) => ours.result.ms[i] / r.result.ms[i]), medianPairRatio: pairedRatio(ours.result.ms, r.result.ms) };
  };
  if (f.json) writeFileSync(f.json, `${JSON.stringify({ ...meta, records: records.map((r) => ({ ...r, ...pairs(r), result: { ...r.result, profile: undefined } })) }, null, 2)}\n`);
  if (f.markdown) {
    const md = (cells: string[]) => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
    writeFileSync(f.markdown, [
      `## Model run of ${meta.date}`, '', `- command: \`${f.command}\``, `- vitgpu: git ${f.git}`, `- ${meta.cpus}; PyTorch ${ctx.torch ?? 'not measured'}, ${ctx.threads} threads`, '',
      md(HEADER), md(HEADER.map(() => '---')), ...tableRows(cases, records).map(md), '',
    ].join('\n'));
  }
}

/**
 * vitgpu's and PyTorch's workers alive together, their timed calls alternated (bench/stepped.ts).
 * vitgpu sets up and warms up (compiles) first, PyTorch after it, so neither warm-up has company.
 */
async function runPaired(vitgpu: readonly string[], pytorch: readonly string[], spec: ModelSpec, timeoutS: number): Promise<[ModelResult, ModelResult]> {
  const stepped = JSON.stringify({ ...spec, stepped: true });
  const sides = [vitgpu, pytorch].map(([cmd, ...args]) => ({ cmd, args: [...args, stepped], worker: null as SteppedWorker | null, warmupMs: 0, ms: [] as number[], result: null as ModelResult | null, error: '' }));
  const fail = (s: (typeof sides)[number], err: unknown) => {
    if (!(err instanceof StepFailure)) throw err;
    s.error = err.message;
    s.worker?.kill();
  };
  for (const s of sides) {
    s.worker = new SteppedWorker(s.cmd, s.args);
    await s.worker.ready(timeoutS).then((w) => void (s.warmupMs = w), (err) => fail(s, err));
  }
  for (let i = 0; i < spec.reps; i++) {
    // A B, then B A: the order flips every pair, so a steady drift of the host favours neither.
    for (const s of i % 2 ? [...sides].reverse() : sides) {
      if (!s.error) await s.worker!.call(timeoutS).then((ms) => void s.ms.push(ms), (err) => fail(s, err));
    }
  }
  for (const s of sides) {
    if (!s.error) await s.worker!.end(timeoutS).then((r) => void (s.result = r as ModelResult), (err) => fail(s, err));
  }
  return sides.map((s): ModelResult => s.result && !s.error
    ? { ...s.result, ms: s.ms, warmupMs: s.warmupMs, paired: true }
    : { ms: s.ms, warmupMs: s.warmupMs, peakRssBytes: 0, loadavg: loadavg()[0], error: s.error || 'no result' }) as [ModelResult, ModelResult];
}

export async function runModelBench(entry: string, f: ModelFlags): Promise<number> {
  // In the order --only gives them.
  const cases = f.only ? MODEL_CASES.filter((c) => f.only!.includes(c.id)).sort((a, b) => f.only!.indexOf(a.id) - f.only!.indexOf(b.id)) : [...MODEL_CASES];
  const unknown = (f.only ?? []).filter((o) => !MODEL_CASES.some((c) => c.id === o));
  if (unknown.length) throw new Error(`--only: unknown model case ${unknown.join(', ')} (one of: ${MODEL_CASES.map((c) => c.id).join(', ')})`);
  // Lavapipe runs on as many threads as the machine has cores unless LP_NUM_THREADS says otherwise.
  const threads = Number(process.env.LP_NUM_THREADS) || cpus().length;
  const torch = f.torch ? torchVersion() : null;
  const started = new Date();
  console.log(`vitgpu model benchmark: ${cases.length} cases, ${f.reps} timed call(s) after a warm-up, depth ${f.depth}${f.depth !== 12 ? ' (reduced ViT-B)' : ''}${f.precision === 'mixed' ? ', vitgpu in mixed precision (PyTorch FP32)' : ''}`);
  console.log(`PyTorch CPU: ${torch ? `torch ${torch} through ${PYTHON}, ${threads} threads (the cores lavapipe uses)` : f.torch ? `not measured: torch is not installed for ${PYTHON} (apt-get install python3-torch)` : 'not measured (--no-torch)'}`);
  if (process.env.LP_NATIVE_VECTOR_WIDTH) console.log(`lavapipe: LP_NATIVE_VECTOR_WIDTH=${process.env.LP_NATIVE_VECTOR_WIDTH}`);
  console.log(`load average ${loadavg().map((x) => x.toFixed(2)).join(' ')} on ${cpus().length} cores\n`);
  const records: ModelRecord[] = [];
  const traces: ChromeTrace[] = [];
  for (const c of cases) {
    const spec: ModelSpec = { ...c, reps: f.reps, threads, labels: LABELS, depth: f.depth, profile: Boolean(f.profile), precision: f.precision };
    const torchScript = join(packageRoot(), 'bench', 'models_torch.py');
    let mine: ModelResult;
    let theirs: ModelResult | null = null;
    if (torch && !f.sequential && !c.memoryOnly && f.reps > 0) {
      [mine, theirs] = await runPaired([process.execPath, entry, '--model-worker'], [PYTHON, torchScript], spec, f.timeoutS);
    } else {
      mine = await runChild(process.execPath, [entry, '--model-worker', JSON.stringify(spec)], MARKER, f.timeoutS);
      if (torch) theirs = await runChild(PYTHON, [torchScript, JSON.stringify(spec)], null, f.timeoutS);
    }
    records.push(record(c, 'vitgpu', mine, f.depth));
    console.log(formatRows(tableRows([c], records.slice(-1))));
    if (mine.profile) {
      const p = mine.profile;
      const overhead = mine.profiledMs && mine.ms.length ? ` (profiled call ${(mine.profiledMs / 1e3).toFixed(2)} s against ${(Math.min(...mine.ms) / 1e3).toFixed(2)}–${(Math.max(...mine.ms) / 1e3).toFixed(2)} s unprofiled)` : '';
      console.log(`\n${c.id}${overhead}:\n${formatProfileTable(p)}\n`);
      traces.push(chromeTrace(p, `vitgpu ${c.id}`, traces.length + 1));
    }
    if (theirs) {
      records.push(record(c, 'pytorch-cpu', theirs, f.depth));
      console.log(formatRows(tableRows([c], records.slice(-2))).split('\n')[2]);
    }
    console.log('');
    // Written after every case, so that a long run that is stopped keeps what it measured.
    writeRecords(f, cases, records, { started, threads, torch });
  }
  const rows = tableRows(cases, records);
  console.log(formatRows(rows));
  if (typeof f.profile === 'string' && traces.length) {
    writeFileSync(f.profile, JSON.stringify(mergeTraces(traces)));
    console.log(`\nprofile trace: ${f.profile}`);
  }
  return records.some((r) => r.impl === 'vitgpu' && r.result.error) ? 1 : 0;
}
