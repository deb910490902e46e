// `npm run bench`: vitgpu against tfjs-backend-webgpu and jax-js, measured in the same run on the same
// adapter. Each (case, implementation) pair runs in a worker process of its own (see worker.ts); for
// each case the workers prepare one after another, then time in interleaved rounds. This process only
// orchestrates, prints the table and the target verdicts, and writes --json/--markdown.
//
//   npm run bench -- [--quick] [--only matmul,attention,layernorm|CASE-ID] [--impl vitgpu,...]
//                    [--json FILE] [--markdown FILE] [--jax-mode best|jit|eager] [--timeout S] [--profile [FILE]]
//   npm run bench -- --models [--only MODEL-CASE,...] [--reps N] [--depth N] [--no-torch] [--precision f32|mixed] [--profile [FILE]]
//
// --models measures whole ViT-B calls against PyTorch on the CPU instead (bench/models.ts).
//
// Dawn keeps a process alive while a GPU instance exists, so every path ends in process.exit().

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { applyLavapipeVectorWidth, chromeTrace, formatProfileTable, mergeTraces, type ChromeTrace } from '../engine/node.js';
import { CASES, selectCases, TOLERANCE } from './cases.js';
import { buildTfjsBundle, IMPLS, peerVersions, type Impl } from './peers.js';
import { buildRecords, evaluateTargets, formatTable, formatTargets, markdownTable, type BenchRecord, type TargetVerdict } from './report.js';
import { FULL_TIMING, QUICK_TIMING, summarize, type RoundSamples, type TimingOptions } from './timing.js';
import { MODEL_CASES, modelWorker, runModelBench } from './models.js';
import { CROSS_SAMPLES, serveWorker, type JaxChoice, type WorkerReply, type WorkerRequest, type WorkerResult } from './worker.js';

interface Flags {
  quick?: boolean;
  only?: string;
  impl?: string;
  json?: string;
  markdown?: string;
  timeout?: string;
  worker?: string;
  jaxMode?: string;
  models?: boolean;
  reps?: string;
  depth?: string;
  precision?: string;
  torch?: boolean;
  sequential?: boolean;
  profile?: string | boolean;
  modelWorker?: string;
}

const MEMORY_DEFINITION =
  'peakBytes: the most GPU bytes held by live buffers during one call, above what was live before it ' +
  '(so the inputs are excluded; outputs and intermediates are included; buffers a framework keeps pooled ' +
  'for reuse are not). vitgpu: its BufferPool (sizes rounded to size classes); tfjs-webgpu: its ' +
  'BufferManager (numBytesUsed); jax-js: its WebGPU backend slots (malloc/decRef), counted by the benchmark.';

const list = (s: string | undefined) => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : undefined);

/** Paths given on the command line are relative to where the user ran npm, not the package root. */
const userPath = (p: string) => resolve(process.env.INIT_CWD ?? process.cwd(), p);

function exitAfterFlush(code: number): void {
  process.stdout.write('', () => process.exit(code));
}

function gitState(): { commit: string | null; modified: string[] } {
  const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trimEnd();
  try {
    const commit = git('rev-parse', '--short', 'HEAD');
    const modified = git('status', '--porcelain', '--', 'engine', 'kernels').split('\n').filter(Boolean);
    return { commit, modified };
  } catch {
    return { commit: null, modified: [] };
  }
}

/**
 * Copies the compiled engine, kernels and benchmark for the workers to load: a rebuild of dist/ while
 * the run goes on (others at work in the same tree) must not mix kernel versions between measurements.
 * The copy stays under dist/ so that packages still resolve from the project's node_modules.
 */
function snapshotDist(): { entry: string; remove(): void } {
  const dist = fileURLToPath(new URL('..', import.meta.url));
  const dir = join(dist, `.bench-run-${process.pid}`);
  for (const sub of ['engine', 'kernels', 'models', 'bench']) {
    cpSync(join(dist, sub), join(dir, sub), { recursive: true, filter: (src) => !src.endsWith('.map') && !src.endsWith('.d.ts') });
  }
  return { entry: join(dir, 'bench', 'run.js'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * One worker process (one case, one implementation), spoken to over IPC. A crash, a hang past the
 * deadline or an error inside it ends up in its result's `error`; nothing it does stops the run.
 */
class WorkerHandle {
  private readonly child: ChildProcess;
  private stderr = '';
  private pending: { resolve(reply: WorkerReply): void; reject(err: Error): void } | null = null;
  private exited: string | null = null;

  constructor(entry: string, readonly caseId: string, readonly impl: Impl, flags: Flags) {
    const args = [entry, '--worker', caseId, '--impl', impl];
    if (flags.jaxMode) args.push('--jax-mode', flags.jaxMode);
    if (impl === 'vitgpu' && profileFlag(flags.profile)) args.push('--profile');
    this.child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    this.child.stderr!.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-20_000);
    });
    this.child.on('message', (msg: WorkerReply) => {
      const p = this.pending;
      this.pending = null;
      p?.resolve(msg);
    });
    this.child.on('exit', (code, signal) => {
      this.exited = `worker exited with ${signal ?? `code ${code}`}`;
      const p = this.pending;
      this.pending = null;
      p?.reject(new Error(this.exited + this.stderrTail()));
    });
  }

  /** Dawn's limit warnings are noise; the rest of stderr's end goes into error messages. */
  private stderrTail(): string {
    const tail = this.stderr.split('\n').filter((l) => l.trim() && !l.startsWith('Warning: max')).slice(-4).join(' | ');
    return tail ? `: ${tail}` : '';
  }

  /** The next message from the worker (after sending `request`, if any), or an error on exit/timeout. */
  next(request: WorkerRequest | null, timeoutS: number): Promise<WorkerReply> {
    if (this.exited) return Promise.reject(new Error(this.exited + this.stderrTail()));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = null;
        this.kill();
        reject(new Error(`timed out after ${timeoutS} s`));
      }, timeoutS * 1e3);
      this.pending = {
        resolve: (r) => (clearTimeout(timer), resolve(r)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
      if (request) this.child.send(request);
    });
  }

  finish(): void {
    if (!this.exited && this.child.connected) this.child.send({ type: 'finish' } satisfies WorkerRequest);
    // A worker that does not leave on its own within a few seconds is ended.
    setTimeout(() => this.kill(), 5_000).unref();
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }
}

function failedResult(caseId: string, impl: Impl, err: unknown): WorkerResult {
  return {
    caseId, impl, adapter: '', peakBytes: null, notes: [], error: (err as Error).message ?? String(err),
    loadavg: { start: loadavg()[0], end: loadavg()[0] }, wallSeconds: 0, phases: {},
  };
}

/**
 * Measures one case for every implementation: each worker prepares in turn (so compiles and the
 * jax-js mode choice do not compete with one another), then the workers take turns timing short rounds,
 * in a rotating order, so that a change of machine load falls on all of them.
 */
async function measureCase(entry: string, caseId: string, impls: readonly Impl[], flags: Flags, timing: TimingOptions, timeoutS: number): Promise<WorkerResult[]> {
  const live: { handle: WorkerHandle; result: WorkerResult; rounds: RoundSamples[] }[] = [];
  const results: WorkerResult[] = [];
  try {
    for (const impl of impls) {
      const handle = new WorkerHandle(entry, caseId, impl, flags);
      try {
        const reply = await handle.next(null, timeoutS);
        if (reply.type !== 'ready') throw new Error(`unexpected ${reply.type} from worker`);
        results.push(reply.result);
        if (reply.result.error) handle.finish();
        else live.push({ handle, result: reply.result, rounds: [] });
      } catch (err) {
        handle.kill();
        results.push(failedResult(caseId, impl, err));
      }
    }
    const roundTimeout = Math.max(60, timeoutS / 4);
    for (let round = 0; round < timing.rounds; round++) {
      const order = live.map((_, i) => live[(i + round) % live.length]);
      for (const w of order) {
        if (w.result.error) continue;
        try {
          const reply = await w.handle.next({ type: 'round', minSamples: timing.minSamples, maxTime: timing.maxTime }, roundTimeout);
          if (reply.type !== 'round' || !reply.round) throw new Error(reply.type === 'round' ? (reply.error ?? 'round failed') : `unexpected ${reply.type}`);
          w.rounds.push(reply.round);
        } catch (err) {
          w.result.error = `while timing: ${(err as Error).message ?? err}`;
          w.handle.kill();
        }
      }
    }
    for (const w of live) {
      w.result.loadavg.end = loadavg()[0];
      if (!w.result.error) w.result.timing = summarize(w.rounds);
    }
  } finally {
    for (const w of live) w.handle.finish();
  }
  return results;
}

function progressLine(n: number, total: number, r: WorkerResult, rec: BenchRecord | undefined): string {
  const head = `[${n}/${total}] ${r.caseId} ${r.impl}`.padEnd(40);
  if (r.error) return `${head} ERROR: ${r.error}`;
  const rate = rec?.gflops ? `${rec.gflops.toFixed(2)} GFLOP/s` : rec?.gbps ? `${rec.gbps.toFixed(2)} GB/s` : '';
  const first = r.phases.first !== undefined ? `, first call ${r.phases.first.toFixed(1)} s` : '';
  return `${head} ${r.timing!.ms.toFixed(1)} ms ${rate}  (${r.timing!.samples} samples in ${r.timing!.rounds} rounds, load ${r.loadavg.start.toFixed(1)}${first})`;
}

async function orchestrate(flags: Flags): Promise<number> {
  const quick = Boolean(flags.quick);
  const cases = selectCases(list(flags.only));
  const impls = (list(flags.impl) ?? [...IMPLS]) as Impl[];
  const bad = impls.filter((i) => !IMPLS.includes(i));
  if (bad.length) throw new Error(`--impl: unknown ${bad.join(', ')} (one of: ${IMPLS.join(', ')})`);
  const timeoutS = Number(flags.timeout ?? (quick ? 240 : 480));
  const timing = quick ? QUICK_TIMING : FULL_TIMING;
  const started = new Date();
  const git = gitState();
  const versions = peerVersions();
  const commandArgs = process.argv.slice(2).join(' ');
  const command = process.env.npm_lifecycle_event === 'bench' ? `npm run bench${commandArgs ? ` -- ${commandArgs}` : ''}` : `node dist/bench/run.js ${commandArgs}`.trim();

  console.log(`vitgpu benchmark: ${cases.length} cases × ${impls.join(', ')}${quick ? ' (quick)' : ''}`);
  console.log(`peers: ${Object.entries(versions).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  console.log(`git ${git.commit ?? '?'}${git.modified.length ? `, uncommitted in engine/kernels: ${git.modified.map((l) => l.slice(3)).join(', ')}` : ''}`);
  console.log(`load average ${loadavg().map((x) => x.toFixed(2)).join(' ')} on ${cpus().length} cores\n`);

  if (impls.includes('tfjs-webgpu')) await buildTfjsBundle();
  const snapshot = snapshotDist();
  process.once('SIGINT', () => {
    snapshot.remove();
    process.exit(130);
  });
  const results: WorkerResult[] = [];
  const traces: ChromeTrace[] = [];
  const total = cases.length * impls.length;
  let n = 0;
  try {
    for (const spec of cases) {
      const caseResults = await measureCase(snapshot.entry, spec.id, impls, flags, timing, timeoutS);
      results.push(...caseResults);
      const recs = buildRecords([spec], caseResults);
      caseResults.forEach((r, i) => {
        console.log(progressLine(++n, total, r, recs[i]));
        for (const note of r.notes) console.log(`    note: ${note}`);
        if (r.leakBytes) console.log(`    WARNING: ${r.leakBytes} bytes stayed live after a call (a leak in vitgpu)`);
        if (r.profile) {
          console.log(`    ${formatProfileTable(r.profile, 8).split('\n').join('\n    ')}`);
          traces.push(chromeTrace(r.profile, `vitgpu ${r.caseId}`, traces.length + 1));
        }
      });
    }
  } finally {
    snapshot.remove();
  }

  const traceFile = profileFlag(flags.profile);
  if (typeof traceFile === 'string' && traces.length) {
    writeFileSync(traceFile, JSON.stringify(mergeTraces(traces)));
    console.log(`profile trace: ${traceFile}`);
  }
  const records = buildRecords(cases, results);
  const targets = evaluateTargets(records);
  const vitResult = results.find((r) => r.impl === 'vitgpu' && r.adapterInfo);
  const adapterNames = [...new Set(results.map((r) => r.adapter).filter(Boolean))];
  const adapter = vitResult?.adapterInfo
    ? { name: vitResult.adapter, ...vitResult.adapterInfo, limits: undefined }
    : { name: adapterNames[0] ?? 'unknown' };

  console.log(`\nadapter: ${adapter.name}${adapterNames.length > 1 ? ` (WARNING: implementations saw different adapters: ${adapterNames.join(' ; ')})` : ''}`);
  if (process.env.LP_NATIVE_VECTOR_WIDTH) console.log(`driver: LP_NATIVE_VECTOR_WIDTH=${process.env.LP_NATIVE_VECTOR_WIDTH} in every implementation's process (lavapipe's vector width)`);
  console.log(`timing: benchmark.js, deferred; per implementation ${timing.rounds} rounds (interleaved with the others) of minSamples ${timing.minSamples}, maxTime ${timing.maxTime} s; ms = mean per call ± 95% margin of error`);
  console.log(`check: largest error relative to the largest reference value, against an f64 CPU reference (tolerance ${TOLERANCE});`);
  console.log(`CPU ms: CPU time of the implementation's process per call, lavapipe's threads included (${cpus().length} cores here)`);
  console.log(`Δ vitgpu: largest absolute difference from vitgpu's outputs at ${CROSS_SAMPLES} sampled positions of each output\n`);
  console.log(formatTable(records));
  if (targets.length) console.log(`\n${formatTargets(targets)}`);
  const kernelLines = kernelSummary(records);
  if (kernelLines.length) console.log(`\nvitgpu kernels measured:\n${kernelLines.join('\n')}`);

  const report = {
    benchmark: 'vitgpu npm run bench',
    date: started.toISOString(),
    finished: new Date().toISOString(),
    command,
    adapter,
    node: process.version,
    cpus: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
    loadavg: { start: results[0]?.loadavg.start ?? null, end: loadavg()[0] },
    quick,
    timing,
    git,
    peers: versions,
    memoryDefinition: MEMORY_DEFINITION,
    checkTolerance: TOLERANCE,
    records,
    targets,
  };
  if (flags.json) {
    writeFileSync(userPath(flags.json), `${JSON.stringify(report, null, 2)}\n`);
    console.log(`\nwrote ${flags.json}`);
  }
  if (flags.markdown) {
    writeFileSync(userPath(flags.markdown), markdownReport(report.date, command, adapter.name, versions, git, records, targets, kernelLines, quick));
    console.log(`wrote ${flags.markdown}`);
  }
  // Failing checks or errors of vitgpu itself fail the run; a peer's failure is reported, not fatal.
  const vitFailed = records.some((r) => r.impl === 'vitgpu' && (r.error || r.checkOk === false));
  return vitFailed ? 1 : 0;
}

async function orchestrateModels(flags: Flags): Promise<number> {
  const git = gitState();
  const snapshot = snapshotDist();
  const args = process.argv.slice(2).join(' ');
  try {
    return await runModelBench(snapshot.entry, {
      only: list(flags.only), reps: Number(flags.reps ?? 2), depth: Number(flags.depth ?? 12), torch: flags.torch !== false, sequential: Boolean(flags.sequential),
      precision: flags.precision === 'mixed' ? 'mixed' : 'f32',
      profile: profileFlag(flags.profile), json: flags.json && userPath(flags.json), markdown: flags.markdown && userPath(flags.markdown),
      timeoutS: Number(flags.timeout ?? 3600),
      command: process.env.npm_lifecycle_event === 'bench' ? `npm run bench -- ${args}` : `node dist/bench/run.js ${args}`,
      git: `${git.commit ?? '?'}${git.modified.length ? ` (uncommitted: ${git.modified.map((l) => l.slice(3)).join(', ')})` : ''}`,
    });
  } finally {
    snapshot.remove();
  }
}

/** --profile / VITGPU_PROFILE: false when off, true for the table only, a path for the trace too. */
function profileFlag(p: string | boolean | undefined): string | boolean {
  if (!p || p === '0' || p === 'false') return false;
  return typeof p === 'string' && p !== '1' && p !== 'true' ? userPath(p) : true;
}

function kernelSummary(records: readonly BenchRecord[]): string[] {
  return records
    .filter((r) => r.impl === 'vitgpu' && r.kernels?.length)
    .map((r) => `  ${r.op} ${r.shape}: ${r.kernels!.map((k) => `${k.name}@${k.sha}`).join(', ')}`);
}

function markdownReport(
  date: string, command: string, adapter: string, versions: Record<string, string>, git: { commit: string | null; modified: string[] },
  records: BenchRecord[], targets: TargetVerdict[], kernelLines: string[], quick: boolean,
): string {
  const verdict = (t: TargetVerdict) => (t.met === true ? '**met**' : t.met === false ? '**not met**' : '**undecided**');
  return [
    `## Run of ${date}${quick ? ' (quick)' : ''}`,
    '',
    `- adapter: ${adapter}`,
    `- command: \`${command}\``,
    `- peers: ${Object.entries(versions).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `- vitgpu: git ${git.commit ?? '?'}${git.modified.length ? ` with uncommitted changes in ${git.modified.map((l) => l.slice(3)).join(', ')}` : ''}`,
    '',
    markdownTable(records),
    '',
    ...targets.map((t) => `- ${verdict(t)}: ${t.target}. ${t.detail}.`),
    '',
    'vitgpu kernels measured (name@SHA-1 of the WGSL):',
    '',
    ...kernelLines.map((l) => `- ${l.trim()}`),
    '',
  ].join('\n');
}

const program = new Command()
  .name('bench')
  .description('vitgpu against tfjs-backend-webgpu and jax-js on the same adapter')
  .option('--quick', 'fewer samples (for iterating)')
  .option('--only <list>', `groups or case ids, comma-separated: matmul, attention, layernorm, ${CASES.map((c) => c.id).join(', ')}`)
  .option('--impl <list>', `implementations, comma-separated: ${IMPLS.join(', ')}`)
  .option('--json <file>', 'write the records as JSON')
  .option('--markdown <file>', 'write the table and verdicts as Markdown')
  .option('--timeout <seconds>', 'for one worker to get ready (default 480, quick 240); a timing round gets a quarter, at least 60')
  .addOption(new Option('--jax-mode <mode>', 'jax-js: best (both, the faster reported), jit or eager').choices(['best', 'jit', 'eager']).default('best'))
  .option('--models', `whole-model cases against PyTorch CPU instead: ${MODEL_CASES.map((c) => c.id).join(', ')} (slow: minutes)`)
  .option('--reps <n>', 'with --models: timed calls after the warm-up', '2')
  .option('--depth <n>', 'with --models: blocks of the ViT-B (fewer for quick iterations)', '12')
  .option('--no-torch', 'with --models: skip PyTorch')
  .option('--sequential', 'with --models: each implementation\'s timed calls back to back (default: alternated with PyTorch\'s, call by call)')
  .addOption(new Option('--precision <p>', 'with --models: vitgpu\'s precision (PyTorch stays FP32)').choices(['f32', 'mixed']).default('f32'))
  .addOption(new Option('--profile [file]', 'profile one extra vitgpu call per case: print its kernel table; with FILE, write the Chrome trace').env('VITGPU_PROFILE'))
  .addOption(new Option('--worker <case>', 'internal: measure one case in this process').hideHelp())
  .addOption(new Option('--model-worker <json>', 'internal: run one model case in this process').hideHelp())
  .action(async (flags: Flags) => {
    let code = 0;
    // Before any Dawn instance, and inherited by every worker: all implementations get one driver setup.
    applyLavapipeVectorWidth();
    try {
      if (flags.modelWorker) {
        await modelWorker(JSON.parse(flags.modelWorker));
        exitAfterFlush(0);
        return;
      }
      if (flags.models) {
        code = await orchestrateModels(flags);
        exitAfterFlush(code);
        return;
      }
      if (flags.worker) {
        await serveWorker(flags.worker, (flags.impl ?? 'vitgpu') as Impl, (flags.jaxMode ?? 'best') as JaxChoice, Boolean(profileFlag(flags.profile)));
        return;
      }
      code = await orchestrate(flags);
    } catch (err) {
      console.error(`bench: ${(err as Error).message ?? err}`);
      code = 2;
    }
    exitAfterFlush(code);
  });

await program.parseAsync(process.argv);
