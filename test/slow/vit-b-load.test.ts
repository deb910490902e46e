// Slow checks on full-size ViT-B (run with VITGPU_SLOW=1; `npm test` skips them):
// - loading a 344 MB f32 checkpoint takes at most about twice that in process memory;
// - with VITGPU_FULL_FIXTURES=DIR (from `scripts/make-vit-fixtures.py --full DIR`), vitgpu's embeddings
//   of full-size ViT-B/16 (timm) and ViT-B/14 (DINOv2 hub, grid 37 → 16) match PyTorch's.

import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parameterShapes, presetConfig } from '../../models/vit.js';
import { writeFileAtomic } from '../../engine/node.js';
import { encodeSafetensors } from '../../models/safetensors-write.js';
import { expectClose, seededValues } from '../helpers.js';

const run = promisify(execFile);
const slow = process.env.VITGPU_SLOW === '1';
const ROOT = new URL('../../', import.meta.url).pathname;

describe.skipIf(!slow)('full-size ViT-B', () => {
  it('loads a 344 MB checkpoint in at most ~2× its size of process memory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vitgpu-vitb-'));
    const path = join(dir, 'vit_base_patch16_224.safetensors');
    const tensors = parameterShapes(presetConfig('vit-b16')).map(([name, shape], i) => ({
      name, dtype: 'F32' as const, shape, data: seededValues(shape.reduce((a, b) => a * b, 1), i, -0.02, 0.02),
    }));
    const bytes = tensors.reduce((s, t) => s + t.data.byteLength, 0);
    await writeFileAtomic(path, encodeSafetensors(tensors, {}));
    tensors.length = 0;
    const script = `
      import { createNodeDevice } from '${ROOT}dist/engine/node.js';
      import { loadVit } from '${ROOT}dist/models/load.js';
      import { openFileSource } from '${ROOT}dist/engine/node.js';
      const device = await createNodeDevice();
      await device.sync();
      const before = process.memoryUsage().rss;
      const src = await openFileSource(${JSON.stringify(path)});
      const { model } = await loadVit(device, src);
      await device.sync();
      console.log(JSON.stringify({ before, maxRss: process.resourceUsage().maxRSS * 1024, params: model.parameters().length }));
      process.exit(0);`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { timeout: 600_000, maxBuffer: 1 << 20 });
    const r = JSON.parse(stdout.trim().split('\n').pop()!);
    rmSync(dir, { recursive: true, force: true });
    console.log(`checkpoint ${(bytes / 2 ** 20).toFixed(0)} MiB; RSS before load ${(r.before / 2 ** 20).toFixed(0)} MiB, peak ${(r.maxRss / 2 ** 20).toFixed(0)} MiB`);
    // On a software adapter the "GPU" copy of the weights lives in this process too: one copy is the
    // model itself, the rest is what loading costs on top.
    expect(r.maxRss - r.before).toBeLessThan(2 * bytes);
  }, 900_000);

  const full = process.env.VITGPU_FULL_FIXTURES;
  it.skipIf(!full || !existsSync(join(full ?? '', 'expected.json')))('matches PyTorch embeddings of full-size ViT-B/16 and B/14', async () => {
    const expected = JSON.parse(readFileSync(join(full!, 'expected.json'), 'utf8'));
    const { createNodeDevice } = await import('../../engine/node.js');
    const { loadVit } = await import('../../models/load.js');
    const { openFileSource } = await import('../../engine/node.js');
    const device = await createNodeDevice();
    const image = device.tensor(expected.image, expected.image_shape);
    for (const [file, c] of Object.entries(expected.cases) as [string, { embedding: number[] }][]) {
      const src = await openFileSource(join(full!, file));
      const { model } = await loadVit(device, src, { imageSize: 224 });
      await src.close();
      expectClose(await model.predict(image).embedding.data(), c.embedding, { atol: 1e-4, rtol: 1e-3 }, file);
      model.dispose();
    }
  }, 900_000);
});
