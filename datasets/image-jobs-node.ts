// What an image worker does for one image, and the messages between the pool and its workers. A worker
// runs runImageJob (image-worker-node.ts); without workers the pool runs it on the main thread, so both
// paths share one implementation and give identical bytes.

import { augmentImage, type Augmentation, type RotateInterpolation } from './augment.js';
import { checkImageHeader, checkPixelLimit } from './image-header.js';
import { loadResizedImage, readImageBytes, statImage } from './image-cache-node.js';
import { decodeImage, ImageError, normalizeImage, type Normalize, type ResizeFilter } from './image.js';

/** 'decode' decodes every image fully; 'header' checks signature, size and completeness (image-header.ts). */
export type CheckMode = 'decode' | 'header';

export interface CacheSpec {
  /** null: no cache. */
  dir: string | null;
  size: number;
  filter: ResizeFilter;
  /** Images above this many pixels are refused before decoding (default DEFAULT_MAX_PIXELS). */
  maxPixels?: number;
}

export type ImageJob =
  | { kind: 'check'; path: string; mode: CheckMode; cache: CacheSpec | null; maxPixels?: number }
  | { kind: 'load'; path: string; cache: CacheSpec; aug: Augmentation | null; interpolation: RotateInterpolation; normalize: Normalize };

export type ImageJobResult =
  | { ok: true; data?: Float32Array; cached?: boolean; cacheWriteError?: string }
  | { ok: false; file: string; problem: string };

/** Runs one job; never throws (failures come back as { ok: false }). Also the worker's whole body. */
export function runImageJob(job: ImageJob): ImageJobResult {
  try {
    if (job.kind === 'check') {
      if (job.cache) {
        const r = loadResizedImage(job.path, job.cache.size, job.cache.filter, job.cache.dir, job.cache.maxPixels);
        return { ok: true, cached: r.cached, cacheWriteError: r.cacheWriteError };
      }
      statImage(job.path);
      const bytes = readImageBytes(job.path);
      checkPixelLimit(bytes, job.path, job.maxPixels);
      if (job.mode === 'header') checkImageHeader(bytes, job.path);
      else decodeImage(bytes, job.path);
      return { ok: true };
    }
    const r = loadResizedImage(job.path, job.cache.size, job.cache.filter, job.cache.dir, job.cache.maxPixels);
    const img = job.aug ? augmentImage(r.image, job.aug, job.interpolation) : r.image;
    normalizeImage(img, job.normalize);
    return { ok: true, data: img.data, cached: r.cached, cacheWriteError: r.cacheWriteError };
  } catch (err) {
    if (err instanceof ImageError) {
      const prefix = `${err.file}: `;
      return { ok: false, file: err.file, problem: err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message };
    }
    return { ok: false, file: job.path, problem: String((err as Error)?.stack ?? err) };
  }
}

export interface WorkerRequest {
  id: number;
  job: ImageJob;
}

export interface WorkerReply {
  id: number;
  result: ImageJobResult;
}
