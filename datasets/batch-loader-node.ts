// Batches of one split (Node): a seeded order, images decoded, resized (through the cache), augmented
// and normalized by the image pool a few batches ahead of the GPU.

import { resolve } from 'node:path';
import { epochOrder, sampleAugmentation, type RotateInterpolation } from './augment.js';
import type { Batch, BatchSource } from './batch.js';
import { DatasetError } from './errors.js';
import { defaultCacheDir } from './image-cache-node.js';
import type { CacheSpec } from './image-jobs-node.js';
import { ImagePool, type PoolOptions } from './image-pool-node.js';
import { ImageError, type Normalize, type ResizeFilter } from './image.js';

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
  /** Images above this many pixels are refused before decoding (default DEFAULT_MAX_PIXELS). */
  maxPixels?: number;
  /** --dicom-window for DICOM images (default 'none'). */
  dicomWindow?: string;
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
export class BatchLoader implements BatchSource {
  readonly labelCount: number;
  readonly samples: number;
  readonly batchesPerEpoch: number;
  private readonly pool: ImagePool;
  private readonly ownPool: boolean;
  private readonly cache: CacheSpec;
  private readonly opts: BatchLoaderOptions;
  private waitMs = 0;

  constructor(
    private readonly items: readonly BatchSample[],
    options: BatchLoaderOptions,
  ) {
    if (!(options.batchSize >= 1)) throw new DatasetError(undefined, `batch size must be at least 1, got ${options.batchSize}`);
    if (items.length === 0) throw new DatasetError(undefined, 'no samples to load');
    this.opts = options;
    this.samples = items.length;
    this.labelCount = items[0].labels.length;
    const full = Math.floor(items.length / options.batchSize);
    this.batchesPerEpoch = options.dropLast || items.length % options.batchSize === 0 ? full : full + 1;
    if (this.batchesPerEpoch === 0) throw new DatasetError(undefined, `${items.length} samples make no full batch of ${options.batchSize} (dropLast)`);
    this.cache = {
      dir: options.cacheDir === undefined ? defaultCacheDir(options.imageRoot) : options.cacheDir,
      size: options.imageSize,
      filter: options.filter ?? 'lanczos',
      maxPixels: options.maxPixels,
      dicomWindow: options.dicomWindow,
    };
    this.ownPool = !options.pool;
    this.pool = options.pool ?? new ImagePool(options);
  }

  /** Seconds the consumer has spent waiting for a batch, over every epoch so far. */
  dataWaitSeconds(): number {
    return this.waitMs / 1000;
  }

  /** The sample indices of `epoch` in visiting order. */
  order(epoch: number): Uint32Array {
    const n = this.items.length;
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
          path: resolve(this.opts.imageRoot, this.items[i].path),
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
      const sample = this.items[idx[k]];
      if (!r.ok) throw new ImageError(r.file, `${r.problem} (master list line ${sample.row})`);
      images.set(r.data!, k * plane);
      labels.set(sample.labels, k * this.labelCount);
    });
    return {
      images,
      labels,
      paths: idx.map((i) => this.items[i].path),
      rows: idx.map((i) => this.items[i].row),
      index: b,
      size: idx.length,
    };
  }

  /** Stops the workers (when this loader started them). */
  async close(): Promise<void> {
    if (this.ownPool) await this.pool.close();
  }
}

