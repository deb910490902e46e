// A run's data (Node): where its master list and images are now, the list read with the run's
// settings, its images checked (and cached) before anything trains or predicts, a digest of its
// training split, and batch loaders for its splits.

import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { VitgpuError } from '../engine/errors.js';
import { fileError } from '../engine/files-node.js';
import { loadMasterList, type MasterList, type Sample, type Split } from '../datasets/dataset.js';
import { getPreset, presetOptions } from '../datasets/presets.js';
import { BatchLoader } from '../datasets/batch-loader-node.js';
import type { ImagePool } from '../datasets/image-pool-node.js';
import { preflight, type BadImage } from '../datasets/preflight-node.js';
import type { DataOptions, Reporter, TrainOptions } from './config.js';

/** Above this share of skipped images (--skip-bad-images), a run warns: usually a wrong --image-root. */
export const SKIPPED_WARNING_SHARE = 0.05;

/**
 * The data options a new run stores: absolute paths (so `eval` works from any folder), plus the same
 * places relative to the run directory (so a run moved together with its data still finds it).
 */
export function anchorData(opts: DataOptions, runDir: string): DataOptions {
  const data = resolve(opts.data);
  const imageRoot = resolve(opts.imageRoot ?? dirname(opts.data));
  const cacheDir = typeof opts.cacheDir === 'string' ? resolve(opts.cacheDir) : opts.cacheDir;
  return { ...opts, data, imageRoot, cacheDir, relative: { data: relative(resolve(runDir), data), imageRoot: relative(resolve(runDir), imageRoot) } };
}

const exists = (p: string) => stat(p).then(() => true, () => false);

/**
 * Where a stored run's data is now. `moved` (--data / --image-root given again) wins; otherwise the
 * stored path, else the stored path relative to the run directory, else an error that says how to point
 * at the data's new place.
 */
export async function locateData(stored: DataOptions, runDir: string, moved: { data?: string; imageRoot?: string } = {}): Promise<DataOptions> {
  const out: DataOptions = { ...stored };
  if (moved.data) {
    out.data = resolve(moved.data);
    out.imageRoot = moved.imageRoot ? resolve(moved.imageRoot) : dirname(out.data);
    return out;
  }
  if (moved.imageRoot) out.imageRoot = resolve(moved.imageRoot);
  const candidates = [stored.data];
  if (stored.relative) candidates.push(resolve(runDir, stored.relative.data));
  // Runs from before absolute paths stored the path as given, relative to where training started.
  if (!isAbsolute(stored.data)) candidates.push(resolve(runDir, stored.data));
  const found = await (async () => {
    for (const c of candidates) if (await exists(c)) return c;
    return null;
  })();
  if (!found) {
    throw new VitgpuError(
      `${runDir}: its master list ${stored.data} is not there any more` +
      `${stored.relative ? ` (nor at ${resolve(runDir, stored.relative.data)}, relative to the run)` : ''}; ` +
      'if the dataset moved, pass --data CSV (and --image-root DIR) to say where it is now',
    );
  }
  out.data = found;
  if (!moved.imageRoot) {
    // The image root moves with the list when the list was found relative to the run.
    const root = found === stored.data ? stored.imageRoot : stored.relative ? resolve(runDir, stored.relative.imageRoot) : undefined;
    out.imageRoot = root ?? dirname(found);
    if (!(await exists(out.imageRoot))) {
      throw new VitgpuError(`${runDir}: its image root ${out.imageRoot} is not there any more; pass --image-root DIR to say where the images are now`);
    }
  }
  return out;
}

export interface ListedData {
  list: MasterList;
  imageRoot: string;
}

/** Reads the master list with the run's settings (no image is opened). */
export async function readList(opts: DataOptions, reporter: Reporter, requireSplits?: Split[]): Promise<ListedData> {
  const csvText = await readFile(opts.data, 'utf8').catch((err) => {
    throw fileError(err, opts.data, 'read the master list');
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
      strictLabels: opts.strictLabels,
      ...(opts.allViews ? { viewColumn: null, views: null } : {}),
      requireSplits,
    }),
  );
  reporter.info(`${opts.data}: ${list.samples.length} images, ${list.labelNames.length} labels (${list.labelNames.join(', ')})` +
    (list.droppedByView ? `, ${list.droppedByView} rows left out by the view filter` : ''));
  for (const w of list.warnings) reporter.info(`warning: ${w}`);
  return { list, imageRoot: resolve(opts.imageRoot ?? dirname(opts.data)) };
}

/** SHA-256 of a split's images and labels in list order: a resumed run checks that its training data is the same. */
export function splitDigest(samples: readonly Sample[]): string {
  const h = createHash('sha256');
  for (const s of samples) h.update(`${s.path}\t${Array.from(s.labels).join(',')}\n`);
  return h.digest('hex');
}

/**
 * Checks (and caches) every image of `samples` before any work. Bad images stop the run with the CSV
 * line at fault, or are counted with --skip-bad-images; skipping more than SKIPPED_WARNING_SHARE warns.
 */
export async function checkImages(
  samples: readonly Sample[], listed: ListedData, opts: DataOptions, imageSize: number, reporter: Reporter, pool?: ImagePool,
): Promise<{ ok: Sample[]; bad: BadImage[] }> {
  const { ok, bad } = await preflight(samples, listed.imageRoot, {
    skipBadImages: opts.skipBadImages,
    listFile: opts.data,
    cache: opts.cacheDir === null ? undefined : { dir: opts.cacheDir, size: imageSize, filter: opts.filter },
    maxPixels: opts.maxPixels,
    dicomWindow: opts.dicomWindow,
    workers: opts.workers,
    pool,
    onProgress: reporter.preflightProgress,
  });
  if (bad.length) {
    reporter.info(`skipped ${bad.length} bad image(s) (--skip-bad-images), e.g. ${bad[0].path}: ${bad[0].reason}`);
    const share = bad.length / Math.max(1, samples.length);
    if (share > SKIPPED_WARNING_SHARE) {
      reporter.info(
        `warning: ${bad.length} of ${samples.length} listed images (${(100 * share).toFixed(1)}%) were skipped as bad; ` +
        `only ${ok.length} remain. Check --image-root (now ${listed.imageRoot}) and --path-column before trusting this run`,
      );
    }
  }
  return { ok, bad };
}

export interface OpenedData extends ListedData {
  samples: Sample[];
  bad: BadImage[];
}

/** readList, then checkImages on the rows of `splits` (default: every row). */
export async function openData(
  opts: DataOptions, imageSize: number, reporter: Reporter, splits?: Split[], pool?: ImagePool,
): Promise<OpenedData> {
  const listed = await readList(opts, reporter, splits);
  const rows = splits ? listed.list.samples.filter((s) => splits.includes(s.split)) : listed.list.samples;
  const { ok, bad } = await checkImages(rows, listed, opts, imageSize, reporter, pool);
  return { ...listed, samples: ok, bad };
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
    maxPixels: data.maxPixels,
    dicomWindow: data.dicomWindow,
    pool,
  });
}
