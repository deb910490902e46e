// ViT parity with PyTorch: checkpoints in the four namings and three dtypes, written with the
// expected outputs by scripts/make-vit-fixtures.py (an independent PyTorch forward).

import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { tidy, type Device } from '../../engine/node.js';
import { loadVit } from '../../models/load.js';
import { openFileSource } from '../../engine/node.js';
import { expectClose, getDevice } from '../helpers.js';

const DIR = new URL('../fixtures/vit/', import.meta.url).pathname;
interface Case {
  format: string;
  dtype: string;
  config: { labels: number };
  embedding: number[];
  logits: number[] | null;
  grads?: Record<string, number[]>;
}
const expected = JSON.parse(readFileSync(`${DIR}expected.json`, 'utf8')) as {
  image: number[];
  image_shape: number[];
  loss_weights: number[];
  grad_params: string[];
  cases: Record<string, Case>;
};

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

// f32 throughout on both sides; differences come from summation order (~1e-6 relative per op over a
// two-block model). 1e-4 relative is the aim the issue sets.
const TOL = { atol: 2e-5, rtol: 1e-4 };

describe('ViT matches PyTorch', () => {
  it.each(Object.keys(expected.cases))('%s', async (file) => {
    const c = expected.cases[file];
    const src = await openFileSource(`${DIR}${file}`);
    const { model, report } = await loadVit(device, src, { imageSize: 32, heads: 2 });
    await src.close();
    expect(report.format).toBe(c.format);
    expect(report.config.labels).toBe(c.logits ? c.logits.length : 0);
    if (c.format === 'hf-vit') expect(report.unexpected).toEqual(['vit.pooler.dense.bias', 'vit.pooler.dense.weight']);
    if (c.format === 'hf-dinov2') expect(report.unexpected).toEqual(['classifier.bias', 'classifier.weight', 'dinov2.embeddings.mask_token']);
    if (c.format === 'dinov2-hub') expect(report.unexpected).toEqual(['mask_token']);

    const image = device.tensor(expected.image, expected.image_shape).requireGrad();
    const r = device.tensor(expected.loss_weights);
    const { embedding, logits } = model.forward(image);
    expectClose(await embedding.data(), c.embedding, TOL, `${file} embedding`);
    if (c.logits) expectClose(await logits!.data(), c.logits, TOL, `${file} logits`);
    else expect(logits).toBeNull();
    if (c.grads) {
      tidy(() => embedding.mul(r).sum().backward());
      expectClose(await image.grad!.data(), c.grads.image, TOL, `${file} d/dimage`);
      for (const name of expected.grad_params) {
        expectClose(await model.param(name).grad!.data(), c.grads[name], TOL, `${file} d/d${name}`);
      }
    }
    model.dispose();
  });
});
