// `vitgpu eval`, `vitgpu compare` and `vitgpu predict`: test-set metrics with bootstrap intervals,
// paired comparisons of initializations, and per-image probabilities.

import { basename, resolve } from 'node:path';
import type { Command } from 'commander';
import { VitgpuError } from '../engine/errors.js';
import { ImagePool } from '../datasets/image-pool-node.js';
import { predictFiles, predictRun, validationThresholds } from '../runs/predict-node.js';
import { writeEvaluation } from '../runs/evaluate-node.js';
import { action, openDevice, withDeviceOptions, withPrecisionOption, type DeviceFlags } from './run.js';
import { withDataOptions, type DataFlags } from './data-options.js';
import { list, nonNegativeInt, oneOf, positiveInt } from './options.js';
import { consoleReporter } from './progress.js';

interface EvalFlags extends DeviceFlags, DataFlags {
  split: string;
  out: string;
  resamples: string;
  seed: string;
  batchSize?: string;
  names?: string;
  baseline?: string;
  thresholdFrom: string;
}

/** Only the data flags the user gave (the run's own settings fill the rest). */
function dataOverrides(f: DataFlags) {
  return {
    data: f.data,
    imageRoot: f.imageRoot,
    preset: f.preset,
    pathColumn: f.pathColumn,
    pathSuffix: f.pathSuffix,
    skipBadImages: f.skipBadImages,
    cacheDir: f.cache === false ? null : f.cacheDir,
    workers: positiveInt(f.workers, '--workers'),
    maxPixels: positiveInt(f.maxPixels, '--max-pixels'),
  };
}

function evalOptions(cmd: Command): Command {
  return withDeviceOptions(withPrecisionOption(withDataOptions(cmd, false)))
    .option('--split <name>', 'split to evaluate: test, valid or train', 'test')
    .option('--resamples <n>', 'bootstrap resamples', '1000')
    .option('--seed <n>', 'bootstrap seed', '0')
    .option('--batch-size <n>', 'images per batch (default: the run\'s)')
    .option('--threshold-from <split>', 'where each label\'s Youden threshold is chosen: valid (the run\'s validation split, then applied to the evaluated split) or test (on the evaluated split itself, as the paper does; optimistic)', 'valid');
}

async function runEvaluation(runs: string[], f: EvalFlags): Promise<void> {
  const split = oneOf(f.split, '--split', ['test', 'valid', 'train'] as const)!;
  const given = list(f.names);
  if (given && given.length !== runs.length) throw new VitgpuError(`--names gives ${given.length} names for ${runs.length} runs`);
  // Names are checked before any run is predicted, which can take long.
  const names = given ?? runs.map((r) => basename(resolve(r)));
  if (new Set(names).size !== names.length) throw new VitgpuError(`two runs have the same name (${names.join(', ')}); pass --names`);
  if (f.baseline !== undefined && !names.includes(f.baseline)) {
    throw new VitgpuError(`--baseline ${f.baseline} is not one of the runs' names (${names.join(', ')})${given ? '' : '; names are the run folders\' names unless --names gives others'}`);
  }
  const resamples = positiveInt(f.resamples, '--resamples')!;
  const thresholdFrom = oneOf(f.thresholdFrom, '--threshold-from', ['valid', 'test'] as const)!;
  const seed = nonNegativeInt(f.seed, '--seed')!;
  const reporter = consoleReporter();
  const device = await openDevice(f);
  const pool = new ImagePool({ workers: positiveInt(f.workers, '--workers') });
  try {
    const preds = [];
    for (const [i, run] of runs.entries()) {
      reporter.info(`predicting ${run} on the ${split} split`);
      preds.push(await predictRun(device, run, { data: dataOverrides(f), split, batchSize: positiveInt(f.batchSize, '--batch-size'), reporter, name: names[i], pool }));
    }
    let thresholds: Record<string, Float64Array> | null = null;
    if (thresholdFrom === 'valid') {
      thresholds = {};
      for (const [i, run] of runs.entries()) {
        const t = await validationThresholds(device, run, { data: dataOverrides(f), batchSize: positiveInt(f.batchSize, '--batch-size'), reporter, pool });
        reporter.info(`${names[i]}: thresholds chosen on the validation split (${t.from})`);
        thresholds[names[i]] = t.thresholds;
      }
    }
    const { table, files } = await writeEvaluation(preds, f.out, { resamples, seed, baseline: f.baseline, split, thresholds });
    console.log(table);
    console.log(`\nwrote ${files.join(', ')}`);
  } finally {
    await pool.close();
  }
}

export function registerEvaluate(program: Command): void {
  evalOptions(
    program
      .command('eval')
      .description('evaluate a run\'s best model: AUC, Youden-threshold metrics, bootstrap intervals, ROC plot')
      .requiredOption('--run <run-dir>', 'a vitgpu run directory')
      .requiredOption('--out <dir>', 'output folder: predictions.csv, metrics.json, table.md, roc.png'),
  ).action(action(async (f: EvalFlags & { run: string }) => runEvaluation([f.run], f)));

  evalOptions(
    program
      .command('compare')
      .description('compare runs (initializations) on the same test images with paired bootstrap p-values')
      .argument('<runs...>', 'run directories')
      .requiredOption('--out <dir>', 'output folder: table.md, metrics.json, roc.png, predictions-NAME.csv')
      .option('--names <a,b,...>', 'model names for the table (default: the run folders\' names)')
      .option('--baseline <name>', 'the model the others are tested against (default: the last run)'),
  ).action(action(async (runs: string[], f: EvalFlags) => {
    if (runs.length < 2) throw new VitgpuError('compare needs at least two runs');
    await runEvaluation(runs, f);
  }));

  withDeviceOptions(withPrecisionOption(
    program
      .command('predict')
      .description('print per-label probabilities for images with a run\'s best model')
      .requiredOption('--run <run-dir>', 'a vitgpu run directory')
      .argument('<images...>', 'PNG, JPEG or DICOM (.dcm, .dicom) files; DICOM gray levels follow the run\'s --dicom-window')
      .option('--json', 'print JSON lines: {"image": ..., "probabilities": {label: p}}')
      .option('--max-pixels <n>', 'refuse images above this many pixels before decoding them (default: the run\'s)')),
  ).action(
    action(async (images: string[], f: DeviceFlags & { run: string; json?: boolean; maxPixels?: string }) => {
      const maxPixels = positiveInt(f.maxPixels, '--max-pixels');
      const device = await openDevice(f);
      let header = false;
      await predictFiles(device, f.run, images, (path, probs, labels) => {
        if (f.json) {
          console.log(JSON.stringify({ image: path, probabilities: Object.fromEntries(labels.map((l, j) => [l, probs[j]])) }));
          return;
        }
        if (!header) console.log(['image', ...labels].join('\t'));
        header = true;
        console.log([path, ...probs.map((v) => v.toFixed(4))].join('\t'));
      }, { maxPixels });
    }),
  );
}
