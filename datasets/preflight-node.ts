// Pre-flight (Node): every image of a master list is read before training starts, so a bad file stops
// the run at once with the CSV line and file at fault, not hours later. Optionally fills the
// resized-image cache on the way.

import { resolve } from 'node:path';
import { DatasetError } from './errors.js';
import { defaultCacheDir } from './image-cache-node.js';
import type { CacheSpec, CheckMode, ImageJobResult } from './image-jobs-node.js';
import { ImagePool, type PoolOptions } from './image-pool-node.js';
import type { ResizeFilter } from './image.js';

export interface PreflightOptions extends PoolOptions {
  /** Skip (and count) bad images instead of stopping at the first. */
  skipBadImages?: boolean;
  /** The master list's name, for messages. */
  listFile?: string;
  /** 'decode' (default) decodes every image fully; 'header' checks signature, size and completeness. */
  check?: CheckMode;
  /** Also fill the resized-image cache (a valid entry then counts as checked, with no decode). */
  cache?: { dir?: string | null; size: number; filter?: ResizeFilter };
  /** --dicom-window for DICOM images (default 'none'). */
  dicomWindow?: string;
  /** Images above this many pixels are bad (default DEFAULT_MAX_PIXELS). */
  maxPixels?: number;
  onProgress?: (done: number, total: number) => void;
  /** Reuse a pool (it is not closed). */
  pool?: ImagePool;
}

export interface BadImage {
  path: string;
  row: number;
  reason: string;
}

export interface PreflightResult<S> {
  ok: S[];
  bad: BadImage[];
}

/**
 * Reads every image before training starts. Without skipBadImages the first bad image (in list
 * order) throws a DatasetError naming the master list line and the image file; with it, bad images
 * are left out and listed in `bad`.
 */
export async function preflight<S extends { path: string; row: number }>(samples: readonly S[], imageRoot: string, options: PreflightOptions = {}): Promise<PreflightResult<S>> {
  const pool = options.pool ?? new ImagePool(options);
  const cache: CacheSpec | null = options.cache
    ? { dir: options.cache.dir === undefined ? defaultCacheDir(imageRoot) : options.cache.dir, size: options.cache.size, filter: options.cache.filter ?? 'lanczos', maxPixels: options.maxPixels, dicomWindow: options.dicomWindow }
    : null;
  const mode = options.check ?? 'decode';
  const results: (ImageJobResult | undefined)[] = new Array(samples.length);
  const window = Math.max(4, pool.workerCount * 4);
  let next = 0;
  let done = 0;
  let stop = false;
  try {
    await new Promise<void>((resolveAll, rejectAll) => {
      if (samples.length === 0) return resolveAll();
      let inFlight = 0;
      const launch = (): void => {
        while (!stop && next < samples.length && inFlight < window) {
          const i = next++;
          inFlight++;
          pool.run({ kind: 'check', path: resolve(imageRoot, samples[i].path), mode, cache, maxPixels: options.maxPixels, dicomWindow: options.dicomWindow }).then(
            (r) => {
              results[i] = r;
              inFlight--;
              done++;
              options.onProgress?.(done, samples.length);
              if (!r.ok && !options.skipBadImages) stop = true;
              if (inFlight === 0 && (stop || next >= samples.length)) resolveAll();
              else launch();
            },
            (err: Error) => {
              stop = true;
              rejectAll(err);
            },
          );
        }
      };
      launch();
    });
  } finally {
    if (!options.pool) await pool.close();
  }
  const ok: S[] = [];
  const bad: BadImage[] = [];
  samples.forEach((s, i) => {
    const r = results[i];
    if (!r) return;
    if (r.ok) ok.push(s);
    else bad.push({ path: s.path, row: s.row, reason: `${r.file}: ${r.problem}` });
  });
  if (bad.length > 0 && !options.skipBadImages) {
    const first = bad[0];
    const more = bad.length > 1 ? ` (${bad.length - 1} more bad image${bad.length > 2 ? 's' : ''} found so far)` : '';
    throw new DatasetError(options.listFile ?? 'master list', `${first.reason}${more}; fix the list or pass --skip-bad-images to skip and count bad images`, { line: first.row });
  }
  return { ok, bad };
}
