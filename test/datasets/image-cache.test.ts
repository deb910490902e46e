// The resized-image cache (datasets/image-cache-node.ts) keys its entries on the target size: runs at
// 224 and at 512 px over the same dataset folder share one cache directory, each size with its own
// entries, and neither overwrites or serves the other's.

import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeSyntheticDataset } from '../../train/demo-data-node.js';
import { defaultCacheDir, loadResizedImage } from '../../datasets/image-cache-node.js';

const entries = (dir: string): string[] => readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name);

describe('resized-image cache', () => {
  it('224 px and 512 px share a dataset folder: separate entries, each served at its own size', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vitgpu-cache-'));
    await writeSyntheticDataset(join(dir, 'data'), { images: 3, size: 600, seed: 1 });
    const image = join(dir, 'data', 'images', 'img0000.png');
    const cache = defaultCacheDir(join(dir, 'data'));
    const a = loadResizedImage(image, 224, 'lanczos', cache);
    const b = loadResizedImage(image, 512, 'lanczos', cache);
    expect([a.cached, b.cached]).toEqual([false, false]);
    expect(entries(cache)).toHaveLength(2);
    const a2 = loadResizedImage(image, 224, 'lanczos', cache);
    const b2 = loadResizedImage(image, 512, 'lanczos', cache);
    expect([a2.cached, b2.cached]).toEqual([true, true]);
    expect([a2.image.width, a2.image.height, b2.image.width, b2.image.height]).toEqual([224, 224, 512, 512]);
    expect(Array.from(a2.image.data)).toEqual(Array.from(a.image.data));
    expect(Array.from(b2.image.data)).toEqual(Array.from(b.image.data));
    expect(entries(cache)).toHaveLength(2);
  }, 120_000);
});
