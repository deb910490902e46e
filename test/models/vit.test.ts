import { beforeAll, describe, expect, it } from 'vitest';
import { tidy, type Device } from '../../engine/node.js';
import { VisionTransformer, presetConfig, parameterShapes } from '../../models/vit.js';
import { bicubicResizeMatrix } from '../../models/pos-embed.js';
import { expectClose, getDevice, seededValues } from '../helpers.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

describe('ViT', () => {
  it('presets have the published parameter counts', () => {
    const count = (name: string, labels = 0) =>
      parameterShapes(presetConfig(name, { labels })).reduce((s, [, sh]) => s + sh.reduce((a, b) => a * b, 1), 0);
    expect(count('vit-b16')).toBe(85_798_656); // timm vit_base_patch16_224 without head
    expect(count('vit-b16', 21843) - count('vit-b16')).toBe(21843 * 769);
    expect(count('vit-b14') + 768).toBe(86_580_480); // dinov2_vitb14 counts its (unused) mask_token too
  });

  it('forward and backward run on a tiny config with registers and LayerScale', async () => {
    const model = new VisionTransformer(device, presetConfig('vit-tiny-test', { labels: 3, registers: 2, layerScale: true, posGrid: 6, posResize: 'dinov2-hub' }), { seed: 1 });
    const img = device.tensor(seededValues(2 * 3 * 32 * 32, 5, 0, 1), [2, 3, 32, 32]);
    tidy(() => {
      const { embedding, logits } = model.forward(img);
      expect(embedding.shape).toEqual([2, 32]);
      expect(logits!.shape).toEqual([2, 3]);
      logits!.square().mean().backward();
    });
    for (const [name, p] of model.params) expect(p.grad, name).not.toBeNull();
    const g = await model.param('pos_embed').grad!.data();
    expect(g.some((v) => v !== 0)).toBe(true);
    model.dispose();
  });
});

describe('positional grid resize', () => {
  it('the identity size gives the identity matrix', () => {
    const m = bicubicResizeMatrix(5, 5, 'size');
    expectClose(m, Array.from({ length: 25 }, (_, i) => (i % 6 === 0 ? 1 : 0)), { atol: 1e-7, rtol: 0 });
  });

  it('rows sum to 1 (a constant grid stays constant)', () => {
    for (const mode of ['size', 'dinov2-hub'] as const) {
      const m = bicubicResizeMatrix(37, 16, mode);
      for (let o = 0; o < 16; o++) {
        let s = 0;
        for (let i = 0; i < 37; i++) s += m[o * 37 + i];
        expect(Math.abs(s - 1)).toBeLessThan(1e-6);
      }
    }
  });
});
