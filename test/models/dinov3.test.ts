// DINOv3 parity with PyTorch: tiny checkpoints in the Hugging Face and original-hub namings and three
// dtypes, written with the expected outputs by scripts/make-dinov3-fixtures.py (an independent PyTorch
// forward from HF's module definitions), at two image sizes (4×4 and 6×6 patch grids: RoPE is computed
// for any grid), with gradients of the image and of the parameters RoPE, the registers and the masked
// key bias touch.

import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { tidy, type Device } from '../../engine/node.js';
import { loadVit } from '../../models/load.js';
import { openFileSource } from '../../engine/node.js';
import { presetConfig, VisionTransformer, parameterShapes } from '../../models/vit.js';
import { ropeTables } from '../../models/rope.js';
import { expectClose, getDevice } from '../helpers.js';
import { vitgpu } from '../cli-runner.js';

const DIR = new URL('../fixtures/dinov3/', import.meta.url).pathname;
interface SizeCase {
  embedding: number[];
  grads?: Record<string, number[]>;
}
interface Case {
  format: string;
  dtype: string;
  sizes: Record<string, SizeCase>;
}
const expected = JSON.parse(readFileSync(`${DIR}expected.json`, 'utf8')) as {
  loss_weights: number[];
  grad_params: string[];
  images: Record<string, { shape: number[]; data: number[] }>;
  cases: Record<string, Case>;
};

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

// f32 on both sides (the checkpoint's f16/bf16 values widen exactly); 1e-4 relative as for the other namings.
const TOL = { atol: 2e-5, rtol: 1e-4 };

describe('DINOv3 ViT matches PyTorch', () => {
  for (const file of Object.keys(expected.cases)) {
    for (const size of Object.keys(expected.images)) {
      it(`${file} at ${size} px`, async () => {
        const c = expected.cases[file];
        const s = c.sizes[size];
        const src = await openFileSource(`${DIR}${file}`);
        const { model, report } = await loadVit(device, src, { imageSize: Number(size), heads: 2 });
        await src.close();
        expect(report.format).toBe(c.format);
        expect(report.config).toMatchObject({ rope: 100, maskKeyBias: true, registers: 4, layerScale: true, eps: 1e-5 });
        expect(report.unexpected).toEqual(c.format === 'hf-dinov3' ? ['embeddings.mask_token'] : ['mask_token']);
        const img = expected.images[size];
        const image = device.tensor(img.data, img.shape).requireGrad();
        const { embedding } = model.forward(image);
        expectClose(await embedding.data(), s.embedding, TOL, `${file} ${size} embedding`);
        if (s.grads) {
          const r = device.tensor(expected.loss_weights);
          tidy(() => embedding.mul(r).sum().backward());
          expectClose(await image.grad!.data(), s.grads.image, TOL, `${file} d/dimage`);
          const d = 32;
          for (const name of expected.grad_params) {
            // The fixture's separate q projection is the first D rows of the fused qkv.
            const ours = name.endsWith('attn.q.weight')
              ? (await model.param(name.replace('attn.q.weight', 'attn.qkv.weight')).grad!.data()).subarray(0, d * d)
              : await model.param(name).grad!.data();
            expectClose(ours, s.grads[name], TOL, `${file} d/d${name}`);
          }
          // The key bias gets no gradient: it is held at zero.
          const qkvBiasGrad = await model.param('blocks.0.attn.qkv.bias').grad!.data();
          expect(Array.from(qkvBiasGrad.subarray(d, 2 * d)).every((v) => v === 0)).toBe(true);
        }
        model.dispose();
      });
    }
  }

  it('RoPE tables follow the reference formula for any grid, and the preset has no positional grid', () => {
    const { cos, sin } = ropeTables(3, 5, 8, 100);
    // head 8: 2 frequencies per axis, 1/100^(k/2); patch (y=1, x=4) of a 3×5 grid: centres 0 and 0.8.
    const inv = [1, 0.1];
    const coords = [2 * (1.5 / 3) - 1, 2 * (4.5 / 5) - 1];
    const row = (1 * 5 + 4) * 8;
    for (const [axis, c] of coords.entries()) {
      for (let k = 0; k < 2; k++) {
        const a = 2 * Math.PI * c * inv[k];
        for (const half of [0, 4]) {
          expect(cos[row + half + axis * 2 + k]).toBeCloseTo(Math.cos(a), 6);
          expect(sin[row + half + axis * 2 + k]).toBeCloseTo(Math.sin(a), 6);
        }
      }
    }
    const c = presetConfig('vit-b16-dinov3');
    const names = parameterShapes(c).map(([n]) => n);
    expect(names).not.toContain('pos_embed');
    expect(names).toContain('reg_token');
    expect(parameterShapes({ ...c, imageSize: 512 }).length).toBe(names.length); // nothing depends on the size
  });

  it('a random vit-b16-dinov3-shaped model runs at two sizes with the same weights, and inspect names the naming', async () => {
    const m = new VisionTransformer(device, { ...presetConfig('vit-b16-dinov3'), width: 32, heads: 2, depth: 1, mlpWidth: 64, patchSize: 8, imageSize: 32, labels: 3 });
    for (const s of [32, 64]) {
      const { logits } = m.predict(device.rand([1, 3, s, s], { seed: s }));
      expect(logits!.shape).toEqual([1, 3]);
      expect(Array.from(await logits!.data()).every(Number.isFinite)).toBe(true);
    }
    m.dispose();
    for (const [file, naming] of [['hf-dinov3-f32.safetensors', 'hf-dinov3'], ['dinov3-hub-bf16.safetensors', 'dinov3-hub']]) {
      const r = await vitgpu(['inspect', `${DIR}${file}`]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`naming: ${naming}`));
      expect(r.stdout).toMatch(/4 registers, 2-D rotary positions \(theta 100\), no key bias/);
    }
  });
});
