// The Node loader on real files in a temporary folder: PNG 8/16-bit gray and RGB and a JPEG made
// with fast-png / jpeg-js, a missing file and a corrupt PNG for the pre-flight check, the resized
// cache (hit on the second read, miss after the file's mtime changes), and BatchLoader determinism
// across worker counts, epochs and resume points. Worker threads come from dist/ (`npm run build`).

import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encode as encodePng } from 'fast-png';
import jpeg from 'jpeg-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { augmentImage, sampleAugmentation } from '../../datasets/augment.js';
import { DatasetError } from '../../datasets/errors.js';
import { decodeImage, ImageError, normalizeImage, resizeImage } from '../../datasets/image.js';
import type { Batch } from '../../datasets/batch.js';
import { BatchLoader } from '../../datasets/batch-loader-node.js';
import { decodeCacheEntry, encodeCacheEntry } from '../../datasets/image-cache.js';
import { loadResizedImage } from '../../datasets/image-cache-node.js';
import { checkImageHeader } from '../../datasets/image-header.js';
import { defaultWorkerUrl, ImagePool } from '../../datasets/image-pool-node.js';
import { preflight } from '../../datasets/preflight-node.js';
import { expectClose } from '../helpers.js';

// Made at load time: describe bodies below read it before beforeAll runs.
const root = mkdtempSync(join(tmpdir(), 'vitgpu-loader-'));
const workersBuilt = existsSync(fileURLToPath(defaultWorkerUrl()));

function gray8(w: number, h: number, seed: number): Uint8Array {
  const d = new Uint8Array(w * h);
  for (let i = 0; i < d.length; i++) d[i] = (i * 37 + seed * 11) % 256;
  return d;
}

function writeImages(dir: string): void {
  writeFileSync(join(dir, 'g8.png'), encodePng({ width: 16, height: 12, data: gray8(16, 12, 1), depth: 8, channels: 1 }));
  const g16 = new Uint16Array(20 * 20);
  for (let i = 0; i < g16.length; i++) g16[i] = (i * 2731) % 65536;
  writeFileSync(join(dir, 'g16.png'), encodePng({ width: 20, height: 20, data: g16, depth: 16, channels: 1 }));
  const rgb = new Uint8Array(10 * 14 * 3);
  for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 53) % 256;
  writeFileSync(join(dir, 'rgb.png'), encodePng({ width: 10, height: 14, data: rgb, depth: 8, channels: 3 }));
  const rgba = Buffer.alloc(16 * 16 * 4);
  for (let i = 0; i < 16 * 16; i++) {
    rgba[4 * i] = rgba[4 * i + 1] = rgba[4 * i + 2] = (i * 7) % 256;
    rgba[4 * i + 3] = 255;
  }
  writeFileSync(join(dir, 'x.jpg'), jpeg.encode({ width: 16, height: 16, data: rgba }, 90).data);
  const good = readFileSync(join(dir, 'g8.png'));
  writeFileSync(join(dir, 'corrupt.png'), good.subarray(0, Math.floor(good.length / 2)));
  for (let k = 0; k < 8; k++) writeFileSync(join(dir, `s${k}.png`), encodePng({ width: 24, height: 18, data: gray8(24, 18, k + 2), depth: 8, channels: 1 }));
}

beforeAll(() => writeImages(root));

afterAll(() => rmSync(root, { recursive: true, force: true }));

const sample = (path: string, row: number, labels = [row % 2, 1 - (row % 2)]) => ({ path, row, split: 'train' as const, labels: Float32Array.from(labels) });

describe('header check', () => {
  it('reads sizes and catches truncated files', () => {
    expect(checkImageHeader(readFileSync(join(root, 'g8.png')), 'g8.png')).toEqual({ width: 16, height: 12 });
    expect(checkImageHeader(readFileSync(join(root, 'x.jpg')), 'x.jpg')).toEqual({ width: 16, height: 16 });
    expect(() => checkImageHeader(readFileSync(join(root, 'corrupt.png')), 'corrupt.png')).toThrow(/corrupt\.png: corrupt PNG \(truncated/);
    const jpg = readFileSync(join(root, 'x.jpg'));
    expect(() => checkImageHeader(jpg.subarray(0, jpg.length - 20), 'cut.jpg')).toThrow(/cut\.jpg: corrupt JPEG \(truncated/);
  });
});

describe('preflight', () => {
  const samples = [sample('g8.png', 2), sample('missing.png', 3), sample('g16.png', 4), sample('corrupt.png', 5), sample('x.jpg', 6), sample('rgb.png', 7)];

  it('stops at the first bad image, naming the master-list line and the file', async () => {
    const err = await preflight(samples, root, { listFile: 'list.csv', workers: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetError);
    const msg = (err as DatasetError).message;
    expect(msg).toMatch(/^list\.csv line 3: .*missing\.png: missing image \(no such file\)/);
    expect(msg).toMatch(/--skip-bad-images/);
    expect((err as DatasetError).line).toBe(3);
  });

  it('names a corrupt PNG the same way', async () => {
    const err = await preflight([samples[0], samples[3]], root, { listFile: 'list.csv', workers: 0 }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^list\.csv line 5: .*corrupt\.png: corrupt PNG/);
  });

  it('skips and counts bad images with skipBadImages, in threads or not', async () => {
    for (const workers of [0, 2]) {
      const r = await preflight(samples, root, { skipBadImages: true, workers, check: workers ? 'decode' : 'header' });
      expect(r.ok.map((s) => s.path)).toEqual(['g8.png', 'g16.png', 'x.jpg', 'rgb.png']);
      expect(r.bad.map((b) => [b.path, b.row])).toEqual([
        ['missing.png', 3],
        ['corrupt.png', 5],
      ]);
      expect(r.bad[0].reason).toMatch(/missing image/);
      expect(r.bad[1].reason).toMatch(/corrupt PNG/);
    }
  });

  it('fills the cache as it checks', async () => {
    const dir = join(root, 'preflight-cache');
    await preflight(samples, root, { skipBadImages: true, workers: 2, cache: { dir, size: 8 } });
    expect(loadResizedImage(join(root, 'x.jpg'), 8, 'lanczos', dir).cached).toBe(true);
  });
});

describe('resized-image cache', () => {
  it('hits on the second read and misses after the file changes', () => {
    const dir = join(root, 'cache-a');
    const file = join(root, 'g16.png');
    const first = loadResizedImage(file, 8, 'area', dir);
    expect(first.cached).toBe(false);
    const second = loadResizedImage(file, 8, 'area', dir);
    expect(second.cached).toBe(true);
    expect(second.image.data).toEqual(first.image.data);
    // Another size or filter is another entry.
    expect(loadResizedImage(file, 6, 'area', dir).cached).toBe(false);
    expect(loadResizedImage(file, 8, 'lanczos', dir).cached).toBe(false);
    const later = new Date(Date.now() + 60_000);
    utimesSync(file, later, later);
    expect(loadResizedImage(file, 8, 'area', dir).cached).toBe(false);
    expect(loadResizedImage(file, 8, 'area', dir).cached).toBe(true);
    // No temporary files are left behind.
    const files = readdirSync(dir, { recursive: true }).map(String);
    expect(files.filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.bin'))).toHaveLength(4);
  });

  it('stores gray as one channel, 8 bits for 8-bit sources and 16 for 16-bit, within half a step', () => {
    for (const [name, bits] of [['g8.png', 8], ['g16.png', 16], ['rgb.png', 8], ['x.jpg', 8]] as const) {
      const file = join(root, name);
      const exact = resizeImage(decodeImage(readFileSync(file), name), 8, 8, 'lanczos');
      const loaded = loadResizedImage(file, 8, 'lanczos', null).image;
      expectClose(loaded.data, exact.data, { atol: 0.5 / (2 ** bits - 1) + 1e-7, rtol: 0 }, name);
    }
    const gray = encodeCacheEntry({ width: 2, height: 1, data: Float32Array.from([0, 1, 0, 1, 0, 1]) }, 16);
    expect(gray.length).toBe(16 + 2 * 2);
    expect(gray[12]).toBe(1);
    const colour = encodeCacheEntry({ width: 2, height: 1, data: Float32Array.from([0, 1, 0, 1, 1, 1]) }, 8);
    expect(colour.length).toBe(16 + 6);
    expect(Array.from(decodeCacheEntry(colour)!.data)).toEqual([0, 1, 0, 1, 1, 1]);
    expect(decodeCacheEntry(colour.subarray(0, 20))).toBeNull();
  });

  it('a cache file of the wrong length is a miss and gets rewritten', () => {
    const dir = join(root, 'cache-b');
    const file = join(root, 'rgb.png');
    loadResizedImage(file, 8, 'area', dir);
    const entry = readdirSync(dir, { recursive: true }).map(String).find((f) => f.endsWith('.bin'))!;
    writeFileSync(join(dir, entry), new Uint8Array(10));
    expect(loadResizedImage(file, 8, 'area', dir).cached).toBe(false);
    expect(loadResizedImage(file, 8, 'area', dir).cached).toBe(true);
  });

  it('names a missing file', () => {
    expect(() => loadResizedImage(join(root, 'nope.png'), 8, 'area', null)).toThrow(ImageError);
    expect(() => loadResizedImage(join(root, 'nope.png'), 8, 'area', null)).toThrow(/nope\.png: missing image/);
  });
});

describe('BatchLoader', () => {
  const names = ['g8.png', 'g16.png', 'rgb.png', 'x.jpg', ...Array.from({ length: 8 }, (_, k) => `s${k}.png`)];
  const samples = names.map((p, i) => sample(p, i + 2, [i % 3 === 0 ? 1 : 0, i % 2, i === 5 ? NaN : 0]));
  const base = { imageRoot: root, batchSize: 5, imageSize: 8, augment: true, shuffle: true, seed: 42, normalize: 'half' as const };

  async function collect(loader: BatchLoader, epoch: number, start = 0): Promise<Batch[]> {
    const out: Batch[] = [];
    for await (const b of loader.epoch(epoch, start)) out.push(b);
    return out;
  }

  it('uses worker threads when dist/ is built', () => {
    const warnings: string[] = [];
    const pool = new ImagePool({ workers: 2, onWarning: (m) => warnings.push(m) });
    expect(pool.workerCount).toBe(workersBuilt ? 2 : 0);
    expect(warnings.length).toBe(workersBuilt ? 0 : 1);
    return pool.close();
  });

  it('gives the same batches for the same seed whatever the worker count, and others for another epoch', async () => {
    const cacheDir = join(root, 'cache-batches');
    const a = new BatchLoader(samples, { ...base, workers: 3, cacheDir });
    const b = new BatchLoader(samples, { ...base, workers: 0, cacheDir: null, prefetch: 1 });
    try {
      expect(a.batchesPerEpoch).toBe(3);
      const [a0, b0, a1] = [await collect(a, 0), await collect(b, 0), await collect(a, 1)];
      expect(a0.map((x) => x.size)).toEqual([5, 5, 2]);
      expect(a0.map((x) => x.index)).toEqual([0, 1, 2]);
      for (let k = 0; k < 3; k++) {
        expect(b0[k].paths).toEqual(a0[k].paths);
        expect(b0[k].images).toEqual(a0[k].images);
        expect(b0[k].labels).toEqual(a0[k].labels);
      }
      // A second pass over the same epoch (now from the cache) repeats it exactly.
      const again = await collect(a, 0);
      for (let k = 0; k < 3; k++) expect(again[k].images).toEqual(a0[k].images);
      // Every sample once per epoch; epochs are ordered and augmented differently.
      expect(a0.flatMap((x) => x.paths).sort()).toEqual([...names].sort());
      expect(a1.flatMap((x) => x.paths)).not.toEqual(a0.flatMap((x) => x.paths));
      // Resuming at batch 1 gives batches 1 and 2.
      const resumed = await collect(a, 0, 1);
      expect(resumed.map((x) => x.index)).toEqual([1, 2]);
      expect(resumed[0].images).toEqual(a0[1].images);
      expect(a.dataWaitSeconds()).toBeGreaterThanOrEqual(0);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("each batch row is the sample's image, augmented by its (seed, epoch, index), normalized, with its labels", async () => {
    const loader = new BatchLoader(samples, { ...base, workers: 2, cacheDir: null });
    try {
      const [first] = await collect(loader, 2);
      const plane = 3 * 8 * 8;
      for (let k = 0; k < first.size; k++) {
        const i = names.indexOf(first.paths[k]);
        const img = loadResizedImage(join(root, names[i]), 8, 'lanczos', null).image;
        const expected = normalizeImage(augmentImage(img, sampleAugmentation(42, 2, i)), 'half');
        expectClose(first.images.subarray(k * plane, (k + 1) * plane), expected.data, { atol: 1e-6 }, first.paths[k]);
        expect(Array.from(first.labels.subarray(k * 3, k * 3 + 3))).toEqual(Array.from(samples[i].labels));
        expect(first.rows[k]).toBe(i + 2);
      }
    } finally {
      await loader.close();
    }
  });

  it('without shuffle or augmentation keeps list order and the plain images; dropLast drops the tail', async () => {
    const loader = new BatchLoader(samples, { imageRoot: root, batchSize: 5, imageSize: 8, workers: 2, cacheDir: null, dropLast: true });
    try {
      const batches = await collect(loader, 0);
      expect(batches.map((b) => b.size)).toEqual([5, 5]);
      expect(batches.flatMap((b) => b.paths)).toEqual(names.slice(0, 10));
      expect(batches[0].images.subarray(0, 192)).toEqual(loadResizedImage(join(root, 'g8.png'), 8, 'lanczos', null).image.data);
    } finally {
      await loader.close();
    }
  });

  it('stops cleanly when the consumer breaks early, and refuses work after close()', async () => {
    const loader = new BatchLoader(samples, { ...base, batchSize: 2, workers: 2, cacheDir: null, prefetch: 3 });
    let seen = 0;
    for await (const b of loader.epoch(0)) {
      seen += b.size;
      break;
    }
    expect(seen).toBe(2);
    await loader.close();
    await expect(collect(loader, 0)).rejects.toThrow(/closed/);
  });

  it('a file that vanished after the pre-flight fails its batch with the file and line', async () => {
    const loader = new BatchLoader([sample('g8.png', 2), sample('gone.png', 9)], { imageRoot: root, batchSize: 2, imageSize: 8, workers: 1, cacheDir: null });
    try {
      await expect(collect(loader, 0)).rejects.toThrow(/gone\.png: missing image \(no such file\) \(master list line 9\)/);
    } finally {
      await loader.close();
    }
  });
});
