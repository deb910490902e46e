// Slow check (VITGPU_SLOW=1 with VITGPU_FULL_DINOV3=DIR from `scripts/make-dinov3-fixtures.py --full DIR`):
// a full-size DINOv3 ViT-B/16 in both namings matches PyTorch's embeddings at 224 px (196 patches) and
// at 512 px (1,024 patches), with the same weights: RoPE is computed for the grid, nothing is resized.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { openFileSource } from '../../engine/node.js';
import { loadVit } from '../../models/load.js';
import { expectClose, getDevice } from '../helpers.js';

const dir = process.env.VITGPU_FULL_DINOV3;
const run = process.env.VITGPU_SLOW === '1' && dir !== undefined && existsSync(join(dir, 'expected.json'));

describe.skipIf(!run)('full-size DINOv3 ViT-B/16', () => {
  const expected = run ? JSON.parse(readFileSync(join(dir!, 'expected.json'), 'utf8')) : null;
  for (const file of run ? Object.keys(expected.cases) : []) {
    for (const size of ['224', '512']) {
      it(`${file} at ${size} px matches PyTorch`, async () => {
        const device = await getDevice();
        const src = await openFileSource(join(dir!, file));
        const { model } = await loadVit(device, src, { imageSize: Number(size) });
        await src.close();
        const img = expected.images[size];
        const emb = model.predict(device.tensor(img.data, img.shape)).embedding;
        // 12 blocks of 768 wide in f32 on both sides: summation order over longer rows.
        expectClose(await emb.data(), expected.embeddings[size], { atol: 1e-4, rtol: 1e-4 }, `${file} ${size}`);
        model.dispose();
      }, 600_000);
    }
  }
});
