// Per-adapter autotuning: for each tunable kernel family (kernels/*-tune.ts) and shape class, which
// candidate of the family's small search space runs. The rules (kernels/*-plan.ts) are written for
// lavapipe; on other adapters the fastest candidate is found by timing, once per shape class and
// adapter, and remembered in a store (in Node a JSON file, engine/tune-node.ts; elsewhere in memory).
//
// Policy: 'off' (rules only), 'cached' (stored choices, rules for the rest; never times) or 'full'
// (a miss runs the rule now and is queued; the queue is timed at the device's next read or sync, when
// the GPU is idle, and later calls of that class use the winner). Launchers are synchronous and timing
// needs a wait, hence the queue. Every candidate computes the same thing to the kernel's tolerance
// (test/kernels/tune.test.ts checks each against the CPU references), so a choice changes speed only.
// Browser-safe: the file store is injected by the Node entry.

import type { Device } from '../engine/device.js';
import { VitgpuError } from '../engine/errors.js';
import { Storage, Tensor } from '../engine/tensor.js';

export type TunePolicy = 'off' | 'cached' | 'full';
export const TUNE_POLICIES: readonly TunePolicy[] = ['off', 'cached', 'full'];

/** What was found for one shape class: the rule's candidate, the chosen one, and the timings (ms per call). */
export interface TuneEntry {
  kernel: string;
  rule: string;
  choice: string;
  ms: Record<string, number>;
  /** Candidates that failed to compile or launch, with the error's first line. */
  failed: Record<string, string>;
}

/** The stored form: entries per adapter key (see adapterKey) and shape class. */
export interface TuneFile {
  format: typeof TUNE_FORMAT;
  adapters: Record<string, Record<string, TuneEntry>>;
}
export const TUNE_FORMAT = 1;

/** Where choices persist between processes (engine/tune-node.ts: a JSON file; memoryTuneStore here). */
export interface TuneStore {
  /** Shown in messages: the file's path, or "memory". */
  readonly where: string;
  /** Stored entries of one adapter key (an unreadable store warns once and reads as empty). */
  load(adapter: string): Record<string, TuneEntry>;
  /** Merges `entries` into the adapter key's stored ones. */
  save(adapter: string, entries: Record<string, TuneEntry>): void;
  /** Forgets every stored entry (all adapters). */
  clear(): void;
  /** Every adapter key with its entries. */
  list(): Record<string, Record<string, TuneEntry>>;
}

export function memoryTuneStore(): TuneStore {
  const file: TuneFile = { format: TUNE_FORMAT, adapters: {} };
  return {
    where: 'memory',
    load: (adapter) => ({ ...file.adapters[adapter] }),
    save: (adapter, entries) => void (file.adapters[adapter] = { ...file.adapters[adapter], ...entries }),
    clear: () => void (file.adapters = {}),
    list: () => file.adapters,
  };
}

/** Checks the stored form (a foreign or corrupt file is ignored by the caller); returns a reason or null. */
export function tuneFileProblem(data: unknown): string | null {
  const f = data as Partial<TuneFile> | null;
  if (!f || typeof f !== 'object' || Array.isArray(f)) return 'not a JSON object';
  if (f.format !== TUNE_FORMAT) return `format ${JSON.stringify(f.format)}, this vitgpu reads format ${TUNE_FORMAT}`;
  if (!f.adapters || typeof f.adapters !== 'object') return 'no "adapters" object';
  for (const entries of Object.values(f.adapters)) {
    for (const e of Object.values(entries ?? {})) {
      if (!e || typeof e.choice !== 'string' || typeof e.rule !== 'string' || typeof e.ms !== 'object') return 'an entry without choice, rule and ms';
    }
  }
  return null;
}

/** The cache key of an adapter: vendor, architecture, device, driver description and vitgpu version. */
export function adapterKey(info: Pick<Device['info'], 'vendor' | 'architecture' | 'device' | 'description'>, version: string): string {
  return [info.vendor, info.architecture, info.device, info.description, `vitgpu ${version}`].join(' | ');
}

/**
 * A tunable kernel family. `S` is a launch's real shape (enough to build scratch operands and time
 * a candidate on it); candidates are strings (ids) the family turns back into its options.
 */
export interface TuneFamily<S> {
  readonly name: string;
  /** The shape class: launches of one class share a choice. */
  classKey(shape: S): string;
  /** The rule's candidate for this shape on this device. */
  rule(device: Device, shape: S): string;
  /** Every candidate worth timing for this shape on this device (within its limits); the rule's included. */
  candidates(device: Device, shape: S): string[];
  /**
   * Scratch operands of `shape` (zeros) and a function that records one launch of a candidate on
   * them; `dispose` frees them.
   */
  scratch(device: Device, shape: S): { run(candidate: string): void; dispose(): void };
  /** A short description of a shape for tables: "M 256 K 768 N 2304, a-k4 b-k4, bias". */
  describe(shape: S): string;
}

interface Seen {
  family: TuneFamily<unknown>;
  shape: unknown;
  key: string;
}

export interface TunerOptions {
  policy: TunePolicy;
  store: TuneStore;
  /** The vitgpu version (part of the adapter key). */
  version: string;
  /** Timed rounds per candidate after a warm-up launch (default 3; the fastest counts). */
  reps?: number;
  /** Called with one line per tuned shape class (the CLI prints progress). */
  log?: (line: string) => void;
  /** Time only these families (names or name prefixes: 'matmul', 'attention'); the others keep the rules on a miss. */
  families?: readonly string[];
}

/** The autotuner of one device: choices by shape class, the queue of misses, and the timing. */
export class Tuner {
  readonly policy: TunePolicy;
  readonly store: TuneStore;
  readonly adapter: string;
  /** Every shape class asked about since the tuner started (the CLI's table). */
  readonly seen = new Map<string, Seen>();
  /** Candidate timings done (0 under 'off' and 'cached', by construction: only tunePending times). */
  timedCandidates = 0;
  private entries: Record<string, TuneEntry>;
  private readonly pending = new Map<string, Seen>();
  private readonly reps: number;
  private readonly log: (line: string) => void;
  private readonly families: readonly string[] | null;

  constructor(readonly device: Device, options: TunerOptions) {
    this.policy = options.policy;
    this.store = options.store;
    this.adapter = adapterKey(device.info, options.version);
    this.reps = options.reps ?? 3;
    this.log = options.log ?? (() => {});
    this.families = options.families ?? null;
    this.entries = this.policy === 'off' ? {} : this.store.load(this.adapter);
  }

  /** The stored or tuned entry of a class key, if any. */
  entry(key: string): TuneEntry | undefined {
    return this.entries[key];
  }

  /** The candidate to run for `shape`, or null for the rule (policy 'off', a miss). */
  choose<S>(family: TuneFamily<S>, shape: S): string | null {
    if (this.policy === 'off') return null;
    const key = `${family.name} ${family.classKey(shape)}`;
    if (!this.seen.has(key)) this.seen.set(key, { family: family as TuneFamily<unknown>, shape, key });
    const hit = this.entries[key];
    if (hit) return hit.choice;
    const wanted = !this.families || this.families.some((f) => family.name === f || family.name.startsWith(`${f}.`));
    if (this.policy === 'full' && wanted && !this.pending.has(key)) {
      this.pending.set(key, { family: family as TuneFamily<unknown>, shape, key });
      this.device.idleWork ??= () => this.tunePending();
    }
    return null;
  }

  /** Shape classes queued for timing. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** Times every queued shape class, keeps the fastest candidates and saves them to the store. */
  async tunePending(): Promise<void> {
    const found: Record<string, TuneEntry> = {};
    for (const [key, job] of [...this.pending]) {
      this.pending.delete(key);
      if (this.entries[key]) continue;
      let entry: TuneEntry;
      try {
        entry = await this.tuneOne(job);
      } catch (err) {
        // Timing must never break the read it runs in (e.g. no memory for the scratch operands):
        // the rule stays, for this process only.
        this.entries[key] = { kernel: job.family.name, rule: '', choice: job.family.rule(this.device, job.shape), ms: {}, failed: {} };
        this.log(`${key}: not tuned (${String((err as Error).message ?? err).split('\n')[0]})`);
        continue;
      }
      this.entries[key] = found[key] = entry;
      const best = entry.ms[entry.choice];
      const rule = entry.ms[entry.rule];
      this.log(`${key}: ${entry.choice}${rule && best ? ` (${(rule / best).toFixed(2)}× the rule's ${entry.rule})` : ''}`);
    }
    if (Object.keys(found).length) this.store.save(this.adapter, found);
  }

  private async tuneOne(job: Seen): Promise<TuneEntry> {
    const { family, shape } = job;
    const rule = family.rule(this.device, shape);
    const entry: TuneEntry = { kernel: family.name, rule, choice: rule, ms: {}, failed: {} };
    const scratch = family.scratch(this.device, shape);
    try {
      for (const id of family.candidates(this.device, shape)) {
        try {
          entry.ms[id] = await this.time(() => scratch.run(id));
          this.timedCandidates++;
        } catch (err) {
          entry.failed[id] = String((err as Error).message ?? err).split('\n').slice(0, 2).join(' ').slice(0, 300);
        }
      }
    } finally {
      scratch.dispose();
    }
    let best = Infinity;
    for (const [id, ms] of Object.entries(entry.ms)) {
      // The rule wins ties (and near-ties within timing noise: 3%).
      const t = id === rule ? ms / 1.03 : ms;
      if (t < best) [best, entry.choice] = [t, id];
    }
    return entry;
  }

  /**
   * ms per launch of `run`: a warm-up launch (compiles; errors surface here), then the fastest of
   * `reps` rounds, each waited for. A round repeats the launch until it lasts about 2 ms, so that a
   * fast GPU kernel is not lost in the wait for the queue.
   */
  private async time(run: () => void): Promise<number> {
    const device = this.device;
    const round = async (launches: number) => {
      const t0 = performance.now();
      for (let i = 0; i < launches; i++) run();
      await device.sync();
      return (performance.now() - t0) / launches;
    };
    await round(1);
    let best = await round(1);
    const launches = Math.min(64, Math.max(1, Math.ceil(2 / Math.max(best, 0.01))));
    for (let i = 1; i < this.reps; i++) best = Math.min(best, await round(launches));
    return best;
  }
}

/** Next power of two (shape classes round sizes up to one). */
export const pow2 = (x: number): number => (x <= 1 ? 1 : 2 ** Math.ceil(Math.log2(x)));

/** A zero-filled scratch tensor of `size` floats, for timing candidates. */
export function zerosScratch(device: Device, size: number): Tensor {
  return new Tensor(device, new Storage(device, device.upload(new Float32Array(Math.max(1, size)))), [Math.max(1, size)]);
}

const tuners = new WeakMap<Device, Tuner>();

/** Starts autotuning on `device` (replacing an earlier tuner). The Node entry does this in createNodeDevice. */
export function installTuner(device: Device, options: TunerOptions): Tuner {
  if (!TUNE_POLICIES.includes(options.policy)) {
    throw new VitgpuError(`tune policy must be one of ${TUNE_POLICIES.join(', ')}, got "${options.policy}"`);
  }
  const t = new Tuner(device, options);
  tuners.set(device, t);
  return t;
}

/** The device's tuner, or null (no tuner: the rules decide). */
export function tunerOf(device: Device): Tuner | null {
  return tuners.get(device) ?? null;
}

/** What a kernel's plan calls: the tuned candidate for `shape`, or null for the rule. */
export function tunedChoice<S>(device: Device, family: TuneFamily<S>, shape: S): string | null {
  return tuners.get(device)?.choose(family, shape) ?? null;
}
