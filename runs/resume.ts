// What `train --resume` may change. A resumed run keeps the settings it started with: an option given
// again with another value contradicts the run and is refused, except the few that change neither the
// model nor the data it learns from (how long it trains, how often it checkpoints, how many threads
// load images). --data and --image-root on resume relocate a moved dataset; whether the training split
// is still the same is checked separately, on its digest (runs/train-node.ts). Browser-safe.

import { VitgpuError } from '../engine/errors.js';
import type { RunConfig } from './config.js';

/** Command-line option → where its value lives in a RunConfig. */
export const OPTION_PATHS: Readonly<Record<string, string>> = {
  '--init': 'model.init',
  '--arch': 'model.arch',
  '--image-size': 'model.imageSize',
  '--heads': 'model.heads',
  '--epochs': 'train.epochs',
  '--batch-size': 'train.batchSize',
  '--lr': 'train.lr',
  '--weight-decay': 'train.weightDecay',
  '--grad-accum': 'train.gradAccum',
  '--warmup-steps': 'train.warmupSteps',
  '--cosine': 'train.cosine',
  '--min-lr': 'train.minLr',
  '--clip-norm': 'train.clipNorm',
  '--patience': 'train.patience',
  '--seed': 'train.seed',
  '--no-augment': 'train.augment',
  '--rotation': 'train.rotation',
  '--checkpoint-minutes': 'train.checkpointMinutes',
  '--checkpoint-steps': 'train.checkpointSteps',
  '--train-fraction': 'train.trainFraction',
  '--subset-seed': 'train.subsetSeed',
  '--min-positives': 'train.minPositives',
  '--lora-rank': 'train.lora.rank',
  '--lora-alpha': 'train.lora.alpha',
  '--lora-dropout': 'train.lora.dropout',
  '--lora-targets': 'train.lora.targets',
  '--freeze-backbone': 'train.freezeBackbone',
  '--features': 'train.features',
  '--checkpoint-activations': 'train.checkpointActivations',
  '--precision': 'train.precision',
  '--loss-scale': 'train.lossScale',
  '--preset': 'data.preset',
  '--labels': 'data.labels',
  '--path-column': 'data.pathColumn',
  '--path-suffix': 'data.pathSuffix',
  '--split-column': 'data.splitColumn',
  '--uncertain': 'data.uncertain',
  '--all-views': 'data.allViews',
  '--skip-bad-images': 'data.skipBadImages',
  '--strict-labels': 'data.strictLabels',
  '--cache-dir': 'data.cacheDir',
  '--no-cache': 'data.cacheDir',
  '--workers': 'data.workers',
  '--resize': 'data.filter',
  '--normalize': 'data.normalize',
  '--max-pixels': 'data.maxPixels',
  '--dicom-window': 'data.dicomWindow',
};

/** Settings added after runs were first written: a run that lacks one has this value. */
const LATER_DEFAULTS: Readonly<Record<string, unknown>> = { '--precision': 'f32' };

/** Options a resumed run may change: they change neither the model nor its data. */
export const SAFE_ON_RESUME: readonly string[] = [
  '--epochs', '--patience', '--checkpoint-minutes', '--checkpoint-steps', '--workers', '--max-pixels', '--cache-dir', '--no-cache',
  // Recomputing activations changes memory and time, not one gradient (test/engine/checkpoint.test.ts).
  '--checkpoint-activations',
];

function get(config: RunConfig, path: string): unknown {
  return path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], config);
}

function set(config: RunConfig, path: string, value: unknown): void {
  const keys = path.split('.');
  const parent = keys.slice(0, -1).reduce<Record<string, unknown>>((o, k) => o[k] as Record<string, unknown>, config as unknown as Record<string, unknown>);
  parent[keys[keys.length - 1]] = value;
}

const show = (v: unknown) => (v === undefined ? '(unset)' : v === null ? 'off' : Array.isArray(v) ? v.join(',') : String(v));
const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/**
 * The stored config with the changes a resume may make. `requested` holds the options' values as a new
 * run would take them; `given` the options the user typed. Throws a VitgpuError listing every option
 * that contradicts the run; returns the config to continue with and a line per changed option.
 */
export function reconcileResume(stored: RunConfig, requested: RunConfig, given: readonly string[], source: string): { config: RunConfig; changed: string[] } {
  const config = structuredClone(stored);
  const changed: string[] = [];
  const refused: string[] = [];
  for (const flag of given) {
    const path = OPTION_PATHS[flag];
    if (!path) continue; // --data, --image-root (relocation), --resume, --out, device options
    const was = get(stored, path) ?? LATER_DEFAULTS[flag];
    const now = get(requested, path);
    if (same(was, now)) continue;
    if (SAFE_ON_RESUME.includes(flag)) {
      set(config, path, now);
      changed.push(`${flag} ${show(was)} -> ${show(now)}`);
    } else {
      refused.push(`${flag} ${show(now)} (the run has ${show(was)})`);
    }
  }
  if (refused.length) {
    throw new VitgpuError(
      `--resume continues a run with the settings it started with (${source}); these options contradict it: ${refused.join('; ')}. ` +
      `Drop them, or start a new run with another --out. Options a resume may change: ${SAFE_ON_RESUME.join(', ')}`,
    );
  }
  return { config, changed };
}
