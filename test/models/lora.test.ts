// LoRA on the ViT (models/lora.ts): a fresh adapter (B = 0) leaves the model's outputs bit-identical,
// the merged weights give the adapted model's outputs, only adapters and head get gradients, and the
// names are PEFT's.

import { beforeAll, describe, expect, it } from 'vitest';
import { tidy, type Device } from '../../engine/node.js';
import { VisionTransformer, presetConfig } from '../../models/vit.js';
import { LoraAdapters, freezeBackbone, type LoraSettings } from '../../models/lora.js';
import { expectClose, getDevice, seededValues } from '../helpers.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

const config = () => presetConfig('vit-tiny-test', { labels: 3 });
const images = () => device.tensor(seededValues(2 * 3 * 32 * 32, 5, 0, 1), [2, 3, 32, 32]);

async function logitsOf(model: VisionTransformer): Promise<Float32Array> {
  const out = model.predict(images());
  return out.logits!.data();
}

/** Gives every B random values, so the adapters change the outputs. */
async function randomizeB(lora: LoraAdapters): Promise<void> {
  const values = new Map<string, Float32Array>();
  let i = 0;
  for (const [name, t] of lora.params) values.set(name, name.includes('lora_B') ? seededValues(t.size, 100 + i++, -0.05, 0.05) : await t.data());
  await lora.load(values, 'test');
}

describe('LoRA on the ViT', () => {
  it.each(['qkv', 'qv', 'all-linear'] as const)('targets %s: names, shapes, and B = 0 leaves the outputs bit-identical', async (targets) => {
    const model = new VisionTransformer(device, config(), { seed: 1 });
    const base = await logitsOf(model);
    const lora = new LoraAdapters(device, model.config, { rank: 4, alpha: 16, dropout: 0.05, targets }, 1);
    const names = [...lora.params.keys()];
    if (targets === 'qkv') expect(names).toEqual(['blocks.0.attn.qkv.lora_A.weight', 'blocks.0.attn.qkv.lora_B.weight', 'blocks.1.attn.qkv.lora_A.weight', 'blocks.1.attn.qkv.lora_B.weight']);
    if (targets === 'qv') {
      expect(names.slice(0, 4)).toEqual(['blocks.0.attn.qkv.q.lora_A.weight', 'blocks.0.attn.qkv.q.lora_B.weight', 'blocks.0.attn.qkv.v.lora_A.weight', 'blocks.0.attn.qkv.v.lora_B.weight']);
      expect(lora.params.get('blocks.0.attn.qkv.q.lora_B.weight')!.shape).toEqual([32, 4]);
    }
    if (targets === 'all-linear') {
      expect(names).toHaveLength(2 * 4 * 2);
      expect(lora.params.get('blocks.1.mlp.fc1.lora_A.weight')!.shape).toEqual([4, 32]);
      expect(lora.params.get('blocks.1.mlp.fc2.lora_A.weight')!.shape).toEqual([4, 64]);
    }
    model.adapters = lora;
    expect(Array.from(await logitsOf(model))).toEqual(Array.from(base));
    lora.dispose();
    model.dispose();
  });

  it.each(['qkv', 'qv', 'all-linear'] as const)('targets %s: the merged model equals base plus adapters', async (targets) => {
    const settings: LoraSettings = { rank: 2, alpha: 16, dropout: 0.1, targets };
    const model = new VisionTransformer(device, config(), { seed: 2 });
    const base = await logitsOf(model);
    const lora = new LoraAdapters(device, model.config, settings, 3);
    await randomizeB(lora);
    model.adapters = lora;
    const adapted = await logitsOf(model);
    expect(Math.max(...adapted.map((v, i) => Math.abs(v - base[i])))).toBeGreaterThan(1e-3); // the adapters do something
    model.adapters = null;
    await lora.mergeInto(model);
    expectClose(await logitsOf(model), adapted, { atol: 1e-5, rtol: 1e-4 }, 'merged vs adapted');
    lora.dispose();
    model.dispose();
  });

  it('DINOv3 (rotary embeddings, masked key bias): the merged model equals base plus adapters', async () => {
    const model = new VisionTransformer(device, { ...presetConfig('vit-b16-dinov3'), width: 32, heads: 2, depth: 2, mlpWidth: 64, patchSize: 8, imageSize: 32, labels: 3 }, { seed: 6 });
    const lora = new LoraAdapters(device, model.config, { rank: 2, alpha: 16, dropout: 0, targets: 'all-linear' }, 7);
    await randomizeB(lora);
    model.adapters = lora;
    const adapted = await logitsOf(model);
    model.adapters = null;
    await lora.mergeInto(model);
    expectClose(await logitsOf(model), adapted, { atol: 1e-5, rtol: 1e-4 }, 'merged vs adapted');
    lora.dispose();
    model.dispose();
  });

  it('with a frozen backbone only the adapters and the head get gradients; dropout follows its seed', async () => {
    const model = new VisionTransformer(device, config(), { seed: 4 });
    const lora = new LoraAdapters(device, model.config, { rank: 2, alpha: 4, dropout: 0.5, targets: 'qv' }, 4);
    await randomizeB(lora);
    freezeBackbone(model);
    model.adapters = lora;
    lora.dropoutSeed = 11;
    const lossOf = () => tidy(() => model.forward(images()).logits!.square().mean());
    const a = await lossOf().item();
    const b = await lossOf().item();
    lora.dropoutSeed = 12;
    const c = await lossOf().item();
    expect(a).toBe(b);
    expect(a).not.toBe(c);
    tidy(() => model.forward(images()).logits!.square().mean().backward());
    for (const [name, p] of model.params) expect(p.grad === null, name).toBe(!name.startsWith('head.'));
    for (const [name, p] of lora.params) expect(p.grad, name).not.toBeNull();
    lora.dispose();
    model.dispose();
  });
});
