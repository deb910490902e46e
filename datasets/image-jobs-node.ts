// What an image worker does for one image, and the messages between the pool and its workers. A worker
// runs runImageJob (image-worker-node.ts); without workers the pool runs it on the main thread, so both
// paths share one implementation and give identical bytes.

import { augmentImage, type Augmentation, type RotateInterpolation } from './augment.js';
import { checkImageHeader, checkPixelLimit } from './image-header.js';
import { loadResizedImage, readImageBytes, statImage } from './image-cache-node.js';
import { decodeImage, ImageError, normalizeImage, type Normalize, type ResizeFilter } from './image.js';
import { parseDicomWindow } from './dicom.js';
import { DicomCodecsNotLoaded, loadDicomCodecs } from './dicom-codecs.js';

/** 'decode' decodes every image fully; 'header' checks signature, size and completeness (image-header.ts). */
export type CheckMode = 'decode' | 'header';

export interface CacheSpec {
  /** null: no cache. */
  dir: string | null;
  size: number;
  filter: ResizeFilter;
  /** Images above this many pixels are refused before decoding (default DEFAULT_MAX_PIXELS). */
  maxPixels?: number;
  /** --dicom-window for DICOM images ('none' when absent). */
  dicomWindow?: string;
}

export type ImageJob =
  | { kind: 'check'; path: string; mode: CheckMode; cache: CacheSpec | null; maxPixels?: number; dicomWindow?: string }
  | { kind: 'load'; path: string; cache: CacheSpec; aug: Augmentation | null; interpolation: RotateInterpolation; normalize: Normalize };

export type ImageJobResult =
  | { ok: true; data?: Float32Array; cached?: boolean; cacheWriteError?: string }
  | { ok: false; file: string; problem: string };

/**
 * Runs one job; never throws (failures come back as { ok: false }). Also the worker's whole body. A
 * compressed DICOM that needs the WebAssembly decoders loads them (once per thread) and is retried.
 */
export async function runImageJob(job: ImageJob): Promise<ImageJobResult> {
  const result = runImageJobSync(job);
  if (result === CODECS_NEEDED) {
    await loadDicomCodecs();
    return runImageJobSync(job) as ImageJobResult;
  }
  return result;
}

const CODECS_NEEDED = Symbol('codecs needed');

function runImageJobSync(job: ImageJob): ImageJobResult | typeof CODECS_NEEDED {
  try {
    if (job.kind === 'check') {
      if (job.cache) {
        const r = loadResizedImage(job.path, job.cache.size, job.cache.filter, job.cache.dir, job.cache.maxPixels, parseDicomWindow(job.cache.dicomWindow));
        return { ok: true, cached: r.cached, cacheWriteError: r.cacheWriteError };
      }
      statImage(job.path);
      const bytes = readImageBytes(job.path);
      checkPixelLimit(bytes, job.path, job.maxPixels);
      if (job.mode === 'header') checkImageHeader(bytes, job.path);
      else decodeImage(bytes, job.path, parseDicomWindow(job.dicomWindow));
      return { ok: true };
    }
    const r = loadResizedImage(job.path, job.cache.size, job.cache.filter, job.cache.dir, job.cache.maxPixels, parseDicomWindow(job.cache.dicomWindow));
    const img = job.aug ? augmentImage(r.image, job.aug, job.interpolation) : r.image;
    normalizeImage(img, job.normalize);
    return { ok: true, data: img.data, cached: r.cached, cacheWriteError: r.cacheWriteError };
  } catch (err) {
    if (err instanceof DicomCodecsNotLoaded) return CODECS_NEEDED;
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
