// A run's data (Node): its master list read with the run's settings, every image checked (and cached)
// before anything trains or predicts, and batch loaders for its splits.

import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { VitgpuError } from '../engine/errors.js';
import { loadMasterList, type MasterList, type Sample, type Split } from '../datasets/dataset.js';
import { getPreset, presetOptions } from '../datasets/presets.js';
import { BatchLoader } from '../datasets/batch-loader-node.js';
import type { ImagePool } from '../datasets/image-pool-node.js';
import { preflight, type BadImage } from '../datasets/preflight-node.js';
import type { DataOptions, Reporter, TrainOptions } from './config.js';

export interface OpenedData {
  list: MasterList;
  samples: Sample[];
  bad: BadImage[];
  imageRoot: string;
}

/** Reads the master list and checks (and caches) every image it names before any training. */
export async function openData(opts: DataOptions, imageSize: number, reporter: Reporter, requireSplits?: Split[], pool?: ImagePool): Promise<OpenedData> {
  const csvText = await readFile(opts.data, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new VitgpuError(`${opts.data}: cannot read the master list (${err.code ?? err.message})`);
  });
  const preset = getPreset(opts.preset ?? 'generic');
  const list = loadMasterList(
    csvText,
    opts.data,
    presetOptions(preset, {
      labels: opts.labels,
      pathColumn: opts.pathColumn,
      pathSuffix: opts.pathSuffix,
      splitColumn: opts.splitColumn,
      uncertain: opts.uncertain,
      ...(opts.allViews ? { viewColumn: null, views: null } : {}),
      requireSplits,
    }),
  );
  const imageRoot = resolve(opts.imageRoot ?? dirname(opts.data));
  reporter.info(`${opts.data}: ${list.samples.length} images, ${list.labelNames.length} labels (${list.labelNames.join(', ')})` +
    (list.droppedByView ? `, ${list.droppedByView} rows left out by the view filter` : ''));
  const { ok, bad } = await preflight(list.samples, imageRoot, {
    skipBadImages: opts.skipBadImages,
    listFile: opts.data,
    cache: opts.cacheDir === null ? undefined : { dir: opts.cacheDir, size: imageSize, filter: opts.filter },
    workers: opts.workers,
    pool,
    onProgress: reporter.preflightProgress,
  });
  if (bad.length) reporter.info(`skipped ${bad.length} bad image(s) (--skip-bad-images), e.g. ${bad[0].path}: ${bad[0].reason}`);
  return { list, samples: ok, bad, imageRoot };
}

/** Batches of `samples` as the run's settings make them; `training` turns on shuffling and augmentation. */
export function splitLoader(
  samples: Sample[], data: DataOptions, imageRoot: string, imageSize: number, batchSize: number,
  pool: ImagePool, training: TrainOptions | null,
): BatchLoader {
  return new BatchLoader(samples, {
    imageRoot,
    batchSize,
    imageSize,
    filter: data.filter,
    normalize: data.normalize,
    augment: training?.augment ?? false,
    interpolation: training?.rotation,
    shuffle: training !== null,
    seed: training?.seed ?? 0,
    cacheDir: data.cacheDir,
    pool,
  });
}
