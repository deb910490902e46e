// `vitgpu embed` and `vitgpu inspect` on the PyTorch parity fixtures, run as users run them.

import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { vitgpu } from '../cli-runner.js';
import { expectClose } from '../helpers.js';

const DIR = new URL('../fixtures/vit/', import.meta.url).pathname;
const expected = JSON.parse(readFileSync(`${DIR}expected.json`, 'utf8')) as { cases: Record<string, { embedding: number[]; logits: number[] | null }> };


describe('vitgpu embed', () => {
  it.each(['timm-f32', 'dinov2-hub-f32', 'hf-vit-f32', 'hf-dinov2-f32', 'timm-f16', 'hf-dinov2-bf16'])(
    'on %s matches PyTorch',
    async (name) => {
      const r = await vitgpu(['embed', '--weights', `${DIR}${name}.safetensors`, '--image', `${DIR}image.png`, '--heads', '2', '--image-size', '32', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout);
      const c = expected.cases[`${name}.safetensors`];
      expectClose(out.embedding, c.embedding, { atol: 2e-5, rtol: 1e-4 }, 'embedding');
      if (c.logits) expectClose(out.logits, c.logits, { atol: 2e-5, rtol: 1e-4 }, 'logits');
      else expect(out.logits).toBeNull();
    },
  );

  it('bad inputs name the file or option', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vitgpu-embed-'));
    const notImage = join(dir, 'x.png');
    writeFileSync(notImage, 'hello');
    let r = await vitgpu(['embed', '--weights', `${DIR}timm-f32.safetensors`, '--image', notImage, '--image-size', '32']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${notImage}: not a PNG, JPEG or DICOM`);
    r = await vitgpu(['embed', '--weights', `${DIR}timm-f32.safetensors`, '--image', `${DIR}image.png`, '--normalize', 'zscore']);
    expect(r.stderr).toMatch(/--normalize must be none, imagenet or half/);
    r = await vitgpu(['embed', '--weights', `${DIR}timm-f32.safetensors`, '--image', `${DIR}image.png`, '--arch', 'vit-b16']);
    expect(r.stderr).toMatch(/--arch vit-b16 does not match the checkpoint \(patchSize: 16 vs 8/);
    r = await vitgpu(['embed', '--weights', join(dir, 'missing.safetensors'), '--image', `${DIR}image.png`]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('missing.safetensors');
  });
});

describe('vitgpu inspect', () => {
  it('reports naming, architecture and skipped tensors', async () => {
    const r = await vitgpu(['inspect', `${DIR}hf-vit-bf16.safetensors`, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.naming).toBe('hf-vit');
    expect(out.architecture).toMatchObject({ patchSize: 8, width: 32, depth: 2, labels: 4, eps: 1e-12 });
    expect(out.unexpected).toEqual(['vit.pooler.dense.bias', 'vit.pooler.dense.weight']);
    expect(out.tensors.find((t: { name: string }) => t.name === 'vit.embeddings.cls_token')).toEqual({ name: 'vit.embeddings.cls_token', dtype: 'BF16', shape: [1, 1, 32] });
  });
});
