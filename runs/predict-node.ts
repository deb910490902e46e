// Predicting with a run (Node): its best model on a split of its master list (or of another list with
// the same labels), or on image files, preprocessed exactly as the run's training images were.

import { basename, resolve } from 'node:path';
import type { Device } from '../engine/device.js';
import { splitSamples, type Split } from '../datasets/dataset.js';
import { ImagePool } from '../datasets/image-pool-node.js';
import { predictBatches, predictImage } from '../models/predict.js';
import type { DataOptions, Reporter } from './config.js';
import { locateData, openData, splitLoader } from './data-node.js';
import { youdenThresholds } from '../eval/thresholds.js';
import { readImageBytes, statImage } from '../datasets/image-cache-node.js';
import { loadRunModel, runSettings } from './run-dir-node.js';

export interface RunPredictions {
  name: string;
  labels: string[];
  paths: string[];
  /** [sample][label], NaN where the label is ignored. */
  truth: number[][];
  probs: number[][];
}

/** Predictions of a run's best model on `split` of its master list (or of `data`, when given). */
export async function predictRun(
  device: Device, runDir: string, opts: { data?: Partial<DataOptions>; split: Split; batchSize?: number; reporter: Reporter; name?: string; pool?: ImagePool },
): Promise<RunPredictions> {
  const { file, config, labels } = await runSettings(runDir);
  const { data: otherList, imageRoot, ...overrides } = opts.data ?? {};
  const located = await locateData(config.data, runDir, { data: otherList, imageRoot });
  const data: DataOptions = { ...located, ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) };
  data.labels = labels;
  const pool = opts.pool ?? new ImagePool({ workers: data.workers });
  try {
    const opened = await openData(data, config.model.imageSize, opts.reporter, [opts.split], pool);
    const samples = splitSamples(opened.samples, opts.split);
    const model = await loadRunModel(device, file);
    const loader = splitLoader(samples, data, opened.imageRoot, model.config.imageSize, opts.batchSize ?? config.train.batchSize, pool, null);
    try {
      const p = await predictBatches(model, loader);
      const l = labels.length;
      const rows = (a: Float32Array) => Array.from({ length: samples.length }, (_, i) => Array.from(a.subarray(i * l, (i + 1) * l)));
      return { name: opts.name ?? basename(resolve(runDir)), labels, paths: p.paths, truth: rows(p.truth), probs: rows(p.probs) };
    } finally {
      await loader.close();
      model.dispose();
    }
  } finally {
    if (!opts.pool) await pool.close();
  }
}

/** Per-label probabilities of a run's best model for image files, in the order given. */
export async function predictFiles(
  device: Device, runDir: string, images: readonly string[],
  onImage: (path: string, probabilities: number[], labels: string[]) => void, opts: { maxPixels?: number } = {},
): Promise<string[]> {
  const { file, config, labels } = await runSettings(runDir);
  const model = await loadRunModel(device, file);
  try {
    for (const path of images) {
      statImage(path); // a regular file: not a folder, and not /dev/zero, which would never end
      const bytes = readImageBytes(path);
      const { probabilities } = await predictImage(model, bytes, path, { ...config.data, maxPixels: opts.maxPixels ?? config.data.maxPixels });
      onImage(path, Array.from(probabilities!), labels);
    }
  } finally {
    model.dispose();
  }
  return labels;
}

/**
 * The decision thresholds of a run chosen on its validation split: those stored with its best
 * checkpoint (Youden's, at the best epoch), or, for runs made before thresholds were stored, Youden's on
 * the best model's predictions for the validation split.
 */
export async function validationThresholds(
  device: Device, runDir: string, opts: { data?: Partial<DataOptions>; batchSize?: number; reporter: Reporter; pool?: ImagePool },
): Promise<{ thresholds: Float64Array; from: string }> {
  const { thresholds } = await runSettings(runDir);
  if (thresholds) return { thresholds, from: 'stored with the best checkpoint' };
  const p = await predictRun(device, runDir, { ...opts, split: 'valid' });
  return { thresholds: youdenThresholds(p.labels, p.truth, p.probs), from: 'the best model on the validation split' };
}
