// The Node side of the dataset layer: a pre-flight check of every image, a resized-image cache on
// disk, and a BatchLoader that decodes, resizes and augments in worker threads ahead of the GPU.
//
// Workers. Node 20 cannot run TypeScript in a worker, so the pool starts the compiled
// dist/datasets/loader-worker.js (`npm run build`; `npm test` builds first). From the compiled
// loader-node.js that is the sibling file; from the TypeScript source (vitest) it is
// ../dist/datasets/loader-worker.js. When that file is missing the loader warns once and does the
// same work on the main thread: same results, only slower. `workers: 0` asks for that explicitly.
// A worker runs runImageJob below, so both paths share one implementation and give identical bytes.
//
// Cache. One file per (absolute path, file size, mtime, target size, filter, format version), named
// by the SHA-256 of those: <cache-dir>/<first 2 hex>/<64 hex>.bin, written to a temporary name and
// renamed into place so a crash never leaves half a file. Layout (little-endian):
//   0  'VGC1'   4  width u32   8  height u32   12  channels u8 (1 gray, 3 RGB)   13  bits u8 (8, 16)
//   14 reserved u16 (0)   16  planar samples, u8 or u16, value = round(v · (2^bits − 1)), v in [0, 1]
// 8 bits for 8-bit sources (JPEG, 8-bit PNG), 16 for 16-bit PNG; one channel when R = G = B (every
// radiograph), so a 224² entry is 50 KB (8-bit) or 100 KB (16-bit). Images are quantized this way
// whether or not the cache is on, so a cache hit, a miss and a disabled cache give the same pixels.
// A file that is truncated or of another size is treated as a miss and rewritten.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { threadId, Worker } from 'node:worker_threads';
import { augmentImage, epochOrder, sampleAugmentation, type Augmentation, type RotateInterpolation } from './augment.js';
import { DatasetError } from './errors.js';
import { decodeImage, ImageError, normalizeImage, resizeImage, type Normalize, type ResizeFilter, type RgbImage } from './image.js';

// ---------------------------------------------------------------------------------------------
// Cache

export const CACHE_VERSION = 1;
const CACHE_MAGIC = [0x56, 0x47, 0x43, 0x31]; // 'VGC1'
const CACHE_HEADER_BYTES = 16;

export function defaultCacheDir(imageRoot: string): string {
  return join(resolve(imageRoot), '.vitgpu-cache');
}

/** The cache file for an image in its current state (size and mtime) at a target size and filter. */
export function cacheFile(cacheDir: string, absPath: string, fileSize: number, mtimeMs: number, size: number, filter: ResizeFilter): string {
  const key = createHash('sha256').update(JSON.stringify([CACHE_VERSION, absPath, fileSize, mtimeMs, size, filter])).digest('hex');
  return join(cacheDir, key.slice(0, 2), `${key}.bin`);
}

function isGray(img: RgbImage): boolean {
  const n = img.width * img.height;
  const d = img.data;
  for (let i = 0; i < n; i++) if (d[i] !== d[n + i] || d[i] !== d[2 * n + i]) return false;
  return true;
}

/** 16 for a 16-bit PNG, else 8 (JPEG is always 8-bit). */
function sourceBits(bytes: Uint8Array): 8 | 16 {
  const png = bytes.length > 24 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[12] === 0x49 && bytes[13] === 0x48; // IHDR first
  return png && bytes[24] === 16 ? 16 : 8;
}

/** Quantizes to the cache format (see the top of the file). */
export function encodeCacheEntry(img: RgbImage, bits: 8 | 16): Uint8Array {
  const channels = isGray(img) ? 1 : 3;
  const count = channels * img.width * img.height;
  const bytesPer = bits / 8;
  const out = new Uint8Array(CACHE_HEADER_BYTES + count * bytesPer);
  const view = new DataView(out.buffer);
  out.set(CACHE_MAGIC, 0);
  view.setUint32(4, img.width, true);
  view.setUint32(8, img.height, true);
  out[12] = channels;
  out[13] = bits;
  const max = bits === 16 ? 65535 : 255;
  for (let i = 0; i < count; i++) {
    const q = Math.round(Math.min(1, Math.max(0, img.data[i])) * max);
    if (bits === 8) out[CACHE_HEADER_BYTES + i] = q;
    else {
      out[CACHE_HEADER_BYTES + 2 * i] = q & 0xff;
      out[CACHE_HEADER_BYTES + 2 * i + 1] = q >>> 8;
    }
  }
  return out;
}

/** Reads a cache entry back to planar RGB; null when the bytes are not a complete entry. */
export function decodeCacheEntry(bytes: Uint8Array): RgbImage | null {
  if (bytes.length < CACHE_HEADER_BYTES || CACHE_MAGIC.some((m, i) => bytes[i] !== m)) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const width = view.getUint32(4, true);
  const height = view.getUint32(8, true);
  const channels = bytes[12];
  const bits = bytes[13];
  if ((channels !== 1 && channels !== 3) || (bits !== 8 && bits !== 16)) return null;
  const n = width * height;
  if (bytes.length !== CACHE_HEADER_BYTES + channels * n * (bits / 8)) return null;
  const data = new Float32Array(3 * n);
  const inv = 1 / (bits === 16 ? 65535 : 255);
  for (let i = 0; i < channels * n; i++) {
    const q = bits === 8 ? bytes[CACHE_HEADER_BYTES + i] : bytes[CACHE_HEADER_BYTES + 2 * i] | (bytes[CACHE_HEADER_BYTES + 2 * i + 1] << 8);
    data[i] = q * inv;
  }
  if (channels === 1) {
    data.copyWithin(n, 0, n);
    data.copyWithin(2 * n, 0, n);
  }
  return { width, height, data };
}

const madeDirs = new Set<string>();
let tempCounter = 0;

function writeAtomically(file: string, bytes: Uint8Array): void {
  const dir = dirname(file);
  if (!madeDirs.has(dir)) {
    mkdirSync(dir, { recursive: true });
    madeDirs.add(dir);
  }
  const temp = `${file}.${process.pid}-${threadId}-${tempCounter++}.tmp`;
  try {
    writeFileSync(temp, bytes);
    renameSync(temp, file);
  } catch (err) {
    try {
      unlinkSync(temp);
    } catch {
      // nothing was written
    }
    throw err;
  }
}

function statImage(absPath: string): { size: number; mtimeMs: number } {
  let st;
  try {
    st = statSync(absPath);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ImageError(absPath, code === 'ENOENT' ? 'missing image (no such file)' : `cannot read (${code ?? (err as Error).message})`);
  }
  if (!st.isFile()) throw new ImageError(absPath, 'not a file');
  return { size: st.size, mtimeMs: st.mtimeMs };
}

function readImageBytes(absPath: string): Uint8Array {
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
export function loadResizedImage(absPath: string, size: number, filter: ResizeFilter, cacheDir: string | null): LoadedImage {
  const st = statImage(absPath);
  const entryFile = cacheDir ? cacheFile(cacheDir, absPath, st.size, st.mtimeMs, size, filter) : null;
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
  const entry = encodeCacheEntry(resizeImage(decodeImage(bytes, absPath), size, size, filter), sourceBits(bytes));
  const loaded: LoadedImage = { image: decodeCacheEntry(entry)!, cached: false };
  if (entryFile) {
    try {
      writeAtomically(entryFile, entry);
    } catch (err) {
      loaded.cacheWriteError = `cannot write the image cache under ${cacheDir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
    }
  }
  return loaded;
}

// ---------------------------------------------------------------------------------------------
// Checks

export type CheckMode = 'decode' | 'header';

/**
 * 'header' reads the file and checks the signature, the image size and that the file is complete
 * (PNG ends with IEND, JPEG with EOI): cheap, and catches truncated downloads.
 */
export function checkImageHeader(bytes: Uint8Array, name: string): { width: number; height: number } {
  const b = bytes;
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) {
    if (b.length < 33 || String.fromCharCode(b[12], b[13], b[14], b[15]) !== 'IHDR') throw new ImageError(name, 'corrupt PNG (no IHDR chunk)');
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const width = view.getUint32(16);
    const height = view.getUint32(20);
    if (!width || !height) throw new ImageError(name, 'corrupt PNG (zero width or height)');
    const tail = String.fromCharCode(b[b.length - 8], b[b.length - 7], b[b.length - 6], b[b.length - 5]);
    if (tail !== 'IEND') throw new ImageError(name, 'corrupt PNG (truncated: no IEND chunk at the end)');
    return { width, height };
  }
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) {
    // Walk the marker segments to the first start-of-frame for the size.
    let i = 2;
    let size: { width: number; height: number } | null = null;
    while (i + 9 < b.length && !size) {
      if (b[i] !== 0xff) throw new ImageError(name, 'corrupt JPEG (bad marker)');
      const marker = b[i + 1];
      const len = (b[i + 2] << 8) | b[i + 3];
      const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
      if (isSof) size = { height: (b[i + 5] << 8) | b[i + 6], width: (b[i + 7] << 8) | b[i + 8] };
      i += 2 + len;
    }
    if (!size || !size.width || !size.height) throw new ImageError(name, 'corrupt JPEG (no frame header)');
    let end = b.length;
    while (end > 2 && b[end - 1] === 0) end--; // some writers pad after EOI
    if (b[end - 2] !== 0xff || b[end - 1] !== 0xd9) throw new ImageError(name, 'corrupt JPEG (truncated: no end-of-image marker)');
    return size;
  }
  throw new ImageError(name, b.length === 0 ? 'empty file' : 'not a PNG or JPEG image (unrecognized signature)');
}

// ---------------------------------------------------------------------------------------------
// Jobs: what a worker (or the main thread, without workers) does for one image

export interface CacheSpec {
  /** null: no cache. */
  dir: string | null;
  size: number;
  filter: ResizeFilter;
}

export type ImageJob =
  | { kind: 'check'; path: string; mode: CheckMode; cache: CacheSpec | null }
  | { kind: 'load'; path: string; cache: CacheSpec; aug: Augmentation | null; interpolation: RotateInterpolation; normalize: Normalize };

export type ImageJobResult =
  | { ok: true; data?: Float32Array; cached?: boolean; cacheWriteError?: string }
  | { ok: false; file: string; problem: string };

/** Runs one job; never throws (failures come back as { ok: false }). Also the worker's whole body. */
export function runImageJob(job: ImageJob): ImageJobResult {
  try {
    if (job.kind === 'check') {
      if (job.cache) {
        const r = loadResizedImage(job.path, job.cache.size, job.cache.filter, job.cache.dir);
        return { ok: true, cached: r.cached, cacheWriteError: r.cacheWriteError };
      }
      statImage(job.path);
      const bytes = readImageBytes(job.path);
      if (job.mode === 'header') checkImageHeader(bytes, job.path);
      else decodeImage(bytes, job.path);
      return { ok: true };
    }
    const r = loadResizedImage(job.path, job.cache.size, job.cache.filter, job.cache.dir);
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

// ---------------------------------------------------------------------------------------------
// The worker pool

/** Where the compiled worker lives: next to the compiled loader, or under dist/ from the sources. */
export function defaultWorkerUrl(): URL {
  const here = import.meta.url;
  return here.endsWith('.js') ? new URL('./loader-worker.js', here) : new URL('../dist/datasets/loader-worker.js', here);
}

export function defaultWorkerCount(): number {
  return Math.max(1, availableParallelism() - 1);
}

export interface PoolOptions {
  /** Worker threads; 0 runs every job on the main thread. Default: CPUs − 1, at least 1. */
  workers?: number;
  workerUrl?: URL;
  onWarning?: (message: string) => void;
}

interface PendingJob {
  id: number;
  job: ImageJob;
  owner: object | null;
  resolve: (r: ImageJobResult) => void;
  reject: (e: Error) => void;
}

class CancelledError extends Error {}

/** A FIFO of image jobs over worker threads (or the main thread). Results do not depend on which ran a job. */
export class ImagePool {
  private readonly slots: { worker: Worker; job: PendingJob | null }[] = [];
  private readonly queue: PendingJob[] = [];
  private nextId = 0;
  private closed = false;
  private failure: Error | null = null;
  private inThreadBusy = false;
  private readonly warn: (message: string) => void;
  private warnedCache = false;
  readonly workerCount: number;

  constructor(options: PoolOptions = {}) {
    this.warn = options.onWarning ?? ((m) => console.warn(`vitgpu: ${m}`));
    let count = options.workers ?? defaultWorkerCount();
    const url = options.workerUrl ?? defaultWorkerUrl();
    if (count > 0 && !existsSync(fileURLToPath(url))) {
      this.warn(`${fileURLToPath(url)} not found (run \`npm run build\`); loading images on the main thread`);
      count = 0;
    }
    for (let i = 0; i < count; i++) {
      const worker = new Worker(url);
      worker.unref(); // referenced only while it has a job, so an idle pool never holds the process open
      const slot = { worker, job: null as PendingJob | null };
      worker.on('message', (reply: WorkerReply) => this.finish(slot, reply));
      worker.on('error', (err) => this.fail(slot, err));
      worker.on('exit', (code) => {
        if (!this.closed) this.fail(slot, new Error(`image worker exited with code ${code}`));
      });
      this.slots.push(slot);
    }
    this.workerCount = count;
  }

  /** Queues a job; `owner` lets cancel() drop it while it still waits. */
  run(job: ImageJob, owner: object | null = null): Promise<ImageJobResult> {
    if (this.closed) return Promise.reject(new Error('the image loader is closed'));
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, job, owner, resolve, reject });
      this.pump();
    });
  }

  /** Drops the queued (not yet started) jobs of `owner`; their promises reject. */
  cancel(owner: object): void {
    for (let i = this.queue.length - 1; i >= 0; i--) {
      if (this.queue[i].owner === owner) this.queue.splice(i, 1)[0].reject(new CancelledError('cancelled'));
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(new Error('the image loader was closed'));
    for (const s of this.slots) s.job?.reject(new Error('the image loader was closed'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private noteCache(result: ImageJobResult): void {
    if (result.ok && result.cacheWriteError && !this.warnedCache) {
      this.warnedCache = true;
      this.warn(`${result.cacheWriteError}; continuing without caching`);
    }
  }

  private pump(): void {
    if (this.closed) return;
    if (this.slots.length === 0) {
      // Main thread: one job per macrotask so timers and I/O still run between images.
      if (this.inThreadBusy || this.queue.length === 0) return;
      this.inThreadBusy = true;
      setImmediate(() => {
        this.inThreadBusy = false;
        const p = this.queue.shift();
        if (p && !this.closed) {
          const result = runImageJob(p.job);
          this.noteCache(result);
          p.resolve(result);
        }
        this.pump();
      });
      return;
    }
    for (const slot of this.slots) {
      if (this.queue.length === 0) break;
      if (slot.job) continue;
      const p = this.queue.shift()!;
      slot.job = p;
      slot.worker.ref();
      slot.worker.postMessage({ id: p.id, job: p.job } satisfies WorkerRequest);
    }
  }

  private finish(slot: { worker: Worker; job: PendingJob | null }, reply: WorkerReply): void {
    const p = slot.job;
    slot.job = null;
    slot.worker.unref();
    if (p && p.id === reply.id) {
      this.noteCache(reply.result);
      p.resolve(reply.result);
    }
    this.pump();
  }

  private fail(slot: { worker: Worker; job: PendingJob | null }, err: Error): void {
    if (this.closed) return;
    this.failure = new Error(`an image worker failed: ${err.message}`);
    slot.job?.reject(this.failure);
    slot.job = null;
    for (const p of this.queue.splice(0)) p.reject(this.failure);
  }
}

// ---------------------------------------------------------------------------------------------
// Pre-flight

export interface PreflightOptions extends PoolOptions {
  /** Skip (and count) bad images instead of stopping at the first. */
  skipBadImages?: boolean;
  /** The master list's name, for messages. */
  listFile?: string;
  /** 'decode' (default) decodes every image fully; 'header' checks signature, size and completeness. */
  check?: CheckMode;
  /** Also fill the resized-image cache (a valid entry then counts as checked, with no decode). */
  cache?: { dir?: string | null; size: number; filter?: ResizeFilter };
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
    ? { dir: options.cache.dir === undefined ? defaultCacheDir(imageRoot) : options.cache.dir, size: options.cache.size, filter: options.cache.filter ?? 'lanczos' }
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
          pool.run({ kind: 'check', path: resolve(imageRoot, samples[i].path), mode, cache }).then(
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

// ---------------------------------------------------------------------------------------------
// Batches

export interface Batch {
  /** [B, 3, S, S], augmented (when on) and normalized. */
  images: Float32Array;
  /** [B, L]; NaN marks an ignored (uncertain) label. */
  labels: Float32Array;
  paths: string[];
  rows: number[];
  /** Batch number within the epoch. */
  index: number;
  size: number;
}

export interface BatchSample {
  path: string;
  labels: Float32Array;
  row: number;
}

export interface BatchLoaderOptions extends PoolOptions {
  imageRoot: string;
  batchSize: number;
  /** Square side the model takes (e.g. 224). */
  imageSize: number;
  filter?: ResizeFilter;
  normalize?: Normalize;
  /** Flip + rotation per sample (training only). Default false. */
  augment?: boolean;
  interpolation?: RotateInterpolation;
  /** A new seeded order every epoch. Default false. */
  shuffle?: boolean;
  seed?: number;
  /** Leave out a last, smaller batch. Default false. */
  dropLast?: boolean;
  /** Resized-image cache; undefined: <image-root>/.vitgpu-cache; null: none. */
  cacheDir?: string | null;
  /** Batches kept in flight ahead of the consumer. Default 4. */
  prefetch?: number;
  /** Reuse a pool instead of starting one (it is not closed by close()). */
  pool?: ImagePool;
}

/**
 * Batches of one split in a seeded order, prepared by a worker pool a few batches ahead of the
 * consumer. The same (seed, epoch) gives the same batches whatever the worker timing, batch start or
 * cache state; a resume can start an epoch at any batch.
 */
export class BatchLoader {
  readonly labelCount: number;
  readonly batchesPerEpoch: number;
  private readonly pool: ImagePool;
  private readonly ownPool: boolean;
  private readonly cache: CacheSpec;
  private readonly opts: BatchLoaderOptions;
  private waitMs = 0;

  constructor(
    private readonly samples: readonly BatchSample[],
    options: BatchLoaderOptions,
  ) {
    if (!(options.batchSize >= 1)) throw new DatasetError(undefined, `batch size must be at least 1, got ${options.batchSize}`);
    if (samples.length === 0) throw new DatasetError(undefined, 'no samples to load');
    this.opts = options;
    this.labelCount = samples[0].labels.length;
    const full = Math.floor(samples.length / options.batchSize);
    this.batchesPerEpoch = options.dropLast || samples.length % options.batchSize === 0 ? full : full + 1;
    if (this.batchesPerEpoch === 0) throw new DatasetError(undefined, `${samples.length} samples make no full batch of ${options.batchSize} (dropLast)`);
    this.cache = {
      dir: options.cacheDir === undefined ? defaultCacheDir(options.imageRoot) : options.cacheDir,
      size: options.imageSize,
      filter: options.filter ?? 'lanczos',
    };
    this.ownPool = !options.pool;
    this.pool = options.pool ?? new ImagePool(options);
  }

  /** Seconds the consumer has spent waiting for a batch, over every epoch so far. */
  get dataWaitSeconds(): number {
    return this.waitMs / 1000;
  }

  /** The sample indices of `epoch` in visiting order. */
  order(epoch: number): Uint32Array {
    const n = this.samples.length;
    if (!this.opts.shuffle) return Uint32Array.from({ length: n }, (_, i) => i);
    return epochOrder(n, this.opts.seed ?? 0, epoch);
  }

  /** The batches of `epoch`, from batch `startBatch` on. Breaking out of the loop cancels the prefetch. */
  epoch(epoch: number, startBatch = 0): AsyncIterableIterator<Batch> {
    const order = this.order(epoch);
    const owner = {};
    const pending = new Map<number, Promise<Batch>>();
    const ahead = Math.max(1, this.opts.prefetch ?? 4);
    let cursor = Math.max(0, startBatch);
    let scheduled = cursor;
    let finished = false;
    const fill = (): void => {
      while (!finished && scheduled < this.batchesPerEpoch && scheduled < cursor + ahead) {
        const b = scheduled++;
        const p = this.makeBatch(order, epoch, b, owner);
        p.catch(() => {}); // awaited later; this only stops an early failure counting as unhandled
        pending.set(b, p);
      }
    };
    const stop = (): void => {
      finished = true;
      this.pool.cancel(owner);
      pending.clear();
    };
    fill();
    const iterator: AsyncIterableIterator<Batch> = {
      next: async () => {
        if (finished || cursor >= this.batchesPerEpoch) {
          stop();
          return { done: true, value: undefined };
        }
        fill();
        const p = pending.get(cursor)!;
        const t0 = performance.now();
        let batch: Batch;
        try {
          batch = await p;
        } catch (err) {
          stop();
          throw err;
        } finally {
          this.waitMs += performance.now() - t0;
        }
        pending.delete(cursor);
        cursor++;
        fill();
        return { done: false, value: batch };
      },
      return: async () => {
        stop();
        return { done: true, value: undefined };
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  private async makeBatch(order: Uint32Array, epoch: number, b: number, owner: object): Promise<Batch> {
    const { batchSize, imageSize: s } = this.opts;
    const start = b * batchSize;
    const idx = Array.from(order.subarray(start, Math.min(order.length, start + batchSize)));
    const seed = this.opts.seed ?? 0;
    const jobs = idx.map((i) =>
      this.pool.run(
        {
          kind: 'load',
          path: resolve(this.opts.imageRoot, this.samples[i].path),
          cache: this.cache,
          aug: this.opts.augment ? sampleAugmentation(seed, epoch, i) : null,
          interpolation: this.opts.interpolation ?? 'bilinear',
          normalize: this.opts.normalize ?? 'none',
        },
        owner,
      ),
    );
    const results = await Promise.all(jobs);
    const plane = 3 * s * s;
    const images = new Float32Array(idx.length * plane);
    const labels = new Float32Array(idx.length * this.labelCount);
    results.forEach((r, k) => {
      const sample = this.samples[idx[k]];
      if (!r.ok) throw new ImageError(r.file, `${r.problem} (master list line ${sample.row})`);
      images.set(r.data!, k * plane);
      labels.set(sample.labels, k * this.labelCount);
    });
    return {
      images,
      labels,
      paths: idx.map((i) => this.samples[i].path),
      rows: idx.map((i) => this.samples[i].row),
      index: b,
      size: idx.length,
    };
  }

  /** Stops the workers (when this loader started them). */
  async close(): Promise<void> {
    if (this.ownPool) await this.pool.close();
  }
}

