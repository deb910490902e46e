// The autotuner in Node (kernels/tune.ts says what it does): the policy from VITGPU_TUNE, and the
// tuned choices as one JSON file in the user's cache folder, written with the one atomic writer.
// A file that is not valid JSON, of another format, or unreadable is ignored with one warning (and
// replaced at the next save), never an error: it only holds speed choices.

import { existsSync, readFileSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Device } from './device.js';
import { VitgpuError } from './errors.js';
import { writeFileAtomicSync } from './files-node.js';
import { TUNE_FORMAT, TUNE_POLICIES, installTuner, tuneFileProblem, type TuneEntry, type TuneFile, type TunePolicy, type TuneStore, type Tuner } from '../kernels/tuners.js';

/** What createNodeDevice({ tune }) takes: a policy, or a policy with its store and progress log. */
export type TuneSetting = TunePolicy | { policy?: TunePolicy; store?: TuneStore; log?: (line: string) => void; reps?: number; families?: readonly string[] };

/**
 * The default policy: 'cached'. Stored choices are used (a `vitgpu tune` run, or a run under 'full',
 * made them), but nothing is timed behind the user's back: timing every shape class of a model takes
 * minutes on a slow adapter, and a run's kernels should not change while it runs unless asked.
 */
export const DEFAULT_TUNE_POLICY: TunePolicy = 'cached';

/** VITGPU_TUNE, checked; the default when unset. */
export function tunePolicyFromEnv(): TunePolicy {
  const v = process.env.VITGPU_TUNE;
  if (!v) return DEFAULT_TUNE_POLICY;
  if (!(TUNE_POLICIES as readonly string[]).includes(v)) throw new VitgpuError(`VITGPU_TUNE must be one of ${TUNE_POLICIES.join(', ')}, got "${v}"`);
  return v as TunePolicy;
}

/** VITGPU_CACHE_DIR, else $XDG_CACHE_HOME/vitgpu, else ~/.cache/vitgpu. */
export function vitgpuCacheDir(): string {
  if (process.env.VITGPU_CACHE_DIR) return process.env.VITGPU_CACHE_DIR;
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'vitgpu');
}

let version: string | null = null;
/** This package's version (from its package.json, found upward from this file in source or dist/). */
export function vitgpuVersion(): string {
  if (version) return version;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'vitgpu' && pkg.version) return (version = pkg.version);
    }
    const up = dirname(dir);
    if (up === dir) return (version = 'unknown');
    dir = up;
  }
}

/** The tuned choices as a JSON file (default: tune.json in vitgpuCacheDir()). */
export function fileTuneStore(path = join(vitgpuCacheDir(), 'tune.json'), warn: (line: string) => void = (l) => console.warn(l)): TuneStore {
  let warned = false;
  const read = (): TuneFile => {
    const empty: TuneFile = { format: TUNE_FORMAT, adapters: {} };
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && !warned) {
        warned = true;
        warn(`vitgpu: ignoring the tuning cache ${path}: ${(err as Error).message}`);
      }
      return empty;
    }
    let problem: string | null;
    let data: unknown;
    try {
      data = JSON.parse(text);
      problem = tuneFileProblem(data);
    } catch {
      problem = 'not valid JSON';
    }
    if (problem) {
      if (!warned) warn(`vitgpu: ignoring the tuning cache ${path} (${problem}); it is rewritten at the next tuning`);
      warned = true;
      return empty;
    }
    return data as TuneFile;
  };
  return {
    where: path,
    load: (adapter) => ({ ...read().adapters[adapter] }),
    save(adapter: string, entries: Record<string, TuneEntry>) {
      const file = read();
      file.adapters[adapter] = { ...file.adapters[adapter], ...entries };
      try {
        writeFileAtomicSync(path, `${JSON.stringify(file, null, 1)}\n`, { mkdir: true, durable: false });
      } catch (err) {
        warn(`vitgpu: could not save tuned kernel choices to ${path}: ${(err as Error).message}`);
      }
    },
    clear: () => rmSync(path, { force: true }),
    list: () => read().adapters,
  };
}

/** Starts the autotuner on a Node device: `setting` or VITGPU_TUNE for the policy, the file store by default. */
/** The policy `setting` (or VITGPU_TUNE) asks for; throws naming the bad value. No GPU object is needed. */
export function resolveTunePolicy(setting?: TuneSetting): TunePolicy {
  const s = typeof setting === 'string' ? { policy: setting } : setting ?? {};
  const policy = s.policy ?? tunePolicyFromEnv();
  if (!(TUNE_POLICIES as readonly string[]).includes(policy)) throw new VitgpuError(`tune must be one of ${TUNE_POLICIES.join(', ')}, got "${policy}"`);
  return policy as TunePolicy;
}

export function startNodeTuning(device: Device, setting?: TuneSetting): Tuner {
  const s = typeof setting === 'string' ? { policy: setting } : setting ?? {};
  const policy = resolveTunePolicy(setting);
  return installTuner(device, { policy, store: s.store ?? fileTuneStore(), version: vitgpuVersion(), log: s.log, reps: s.reps, families: s.families });
}
