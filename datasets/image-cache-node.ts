// The resized-image cache on disk (Node). One file per (absolute path, file size, mtime, target size,
// filter, DICOM window policy, format version), named by the SHA-256 of those: <cache-dir>/<first 2 hex>/<64 hex>.bin, in
// the format of image-cache.ts, written atomically so a crash never leaves half a file. A file that is
// truncated or of another size is treated as a miss and rewritten.

import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeFileAtomicSync } from '../engine/files-node.js';
import { CACHE_VERSION, decodeCacheEntry, encodeCacheEntry, sourceBits } from './image-cache.js';
import { ImageError, type ResizeFilter, type RgbImage } from './image.js';
import { DEFAULT_DICOM_WINDOW, dicomWindowText, type DicomWindow } from './dicom.js';
import { squareImage } from './preprocess.js';

export function defaultCacheDir(imageRoot: string): string {
  return join(resolve(imageRoot), '.vitgpu-cache');
}

/**
 * The cache file for an image in its current state (size and mtime) at a target size and filter, and
 * DICOM window policy: a policy other than the default is part of the key (the default adds nothing,
 * so caches written before DICOM support stay valid; PNG and JPEG ignore the policy anyway).
 */
export function cacheFile(
  cacheDir: string, absPath: string, fileSize: number, mtimeMs: number, size: number, filter: ResizeFilter,
  dicomWindow: DicomWindow = DEFAULT_DICOM_WINDOW,
): string {
  const windowKey = dicomWindowText(dicomWindow);
  const parts: unknown[] = [CACHE_VERSION, absPath, fileSize, mtimeMs, size, filter];
  if (windowKey !== DEFAULT_DICOM_WINDOW) parts.push(`dicom-window ${windowKey}`);
  const key = createHash('sha256').update(JSON.stringify(parts)).digest('hex');
  return join(cacheDir, key.slice(0, 2), `${key}.bin`);
}

export function statImage(absPath: string): { size: number; mtimeMs: number } {
  let st;
  try {
    st = statSync(absPath);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ImageError(absPath, code === 'ENOENT' ? 'missing image (no such file)' : `cannot read (${code ?? (err as Error).message})`);
  }
  if (!st.isFile()) throw new ImageError(absPath, st.isDirectory() ? 'a directory, not an image file' : 'not a regular file (a device, pipe or socket)');
  return { size: st.size, mtimeMs: st.mtimeMs };
}

export function readImageBytes(absPath: string): Uint8Array {
  try {
    return readFileSync(absPath);
  } catch (err) {
    throw new ImageError(absPath, `cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

export interface LoadedImage {
  /** size × size planar RGB in [0, 1], quantized as the cache stores it. */
  image: RgbImage;
  /** True when it came from the cache (no decode). */
  cached: boolean;
  /** Set when the cache entry could not be written (the image is still returned). */
  cacheWriteError?: string;
}

/**
 * The image at `absPath` decoded, squared to size×size with `filter` and quantized; through the
 * cache in `cacheDir` (null: no cache). Throws ImageError for a missing, unreadable or corrupt file.
 */
export function loadResizedImage(
  absPath: string, size: number, filter: ResizeFilter, cacheDir: string | null, maxPixels?: number, dicomWindow: DicomWindow = DEFAULT_DICOM_WINDOW,
): LoadedImage {
  const st = statImage(absPath);
  const entryFile = cacheDir ? cacheFile(cacheDir, absPath, st.size, st.mtimeMs, size, filter, dicomWindow) : null;
  if (entryFile) {
    let bytes: Uint8Array | null = null;
    try {
      bytes = readFileSync(entryFile);
    } catch {
      // a miss
    }
    const image = bytes && decodeCacheEntry(bytes);
    if (image && image.width === size && image.height === size) return { image, cached: true };
  }
  const bytes = readImageBytes(absPath);
  const image = squareImage(bytes, absPath, size, filter, maxPixels, dicomWindow);
  const loaded: LoadedImage = { image, cached: false };
  if (entryFile) {
    try {
      writeFileAtomicSync(entryFile, encodeCacheEntry(image, sourceBits(bytes, absPath)), { durable: false, mkdir: true });
    } catch (err) {
      loaded.cacheWriteError = `cannot write the image cache under ${cacheDir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
    }
  }
  return loaded;
}
