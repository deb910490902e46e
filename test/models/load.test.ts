import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type Device } from '../../engine/node.js';
import { loadVit, vitCheckpointTensors } from '../../models/load.js';
import { bytesSource, readHeader, readTensorF32 } from '../../models/safetensors.js';
import { encodeSafetensors } from '../../models/safetensors-write.js';
import { openFileSource, writeFileAtomic } from '../../engine/node.js';
import { VisionTransformer, presetConfig } from '../../models/vit.js';
import { expectClose, getDevice, seededValues } from '../helpers.js';

const DIR = new URL('../fixtures/vit/', import.meta.url).pathname;
let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

/** The fixture's tensors, optionally edited, as an in-memory safetensors source. */
async function editedFixture(file: string, edit: (name: string) => string | null) {
  const src = bytesSource(readFileSync(`${DIR}${file}`), file);
  const header = await readHeader(src);
  const tensors = [];
  for (const info of header.tensors.values()) {
    const name = edit(info.name);
    if (name) tensors.push({ name, dtype: 'F32' as const, shape: info.shape, data: await readTensorF32(src, info) });
  }
  const chunks = encodeSafetensors(tensors);
  const bytes = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    bytes.set(c, o);
    o += c.length;
  }
  return bytesSource(bytes, `edited-${file}`);
}

describe('loading checkpoints', () => {
  it('a head with another label count is replaced by a new one, and reported', async () => {
    const src = bytesSource(readFileSync(`${DIR}timm-f32.safetensors`), 'timm-f32.safetensors');
    const { model, report } = await loadVit(device, src, { imageSize: 32, heads: 2, labels: 3 });
    expect(report.newHead).toMatch(/head has 5 labels, 3 requested/);
    expect(report.unexpected).toEqual(['head.bias', 'head.weight']);
    expect(model.param('head.weight').shape).toEqual([3, 32]);
    model.dispose();
  });

  it('missing weights are an error that lists them', async () => {
    const src = await editedFixture('timm-f32.safetensors', (n) => (n.startsWith('blocks.1.mlp') || n === 'norm.bias' ? null : n));
    await expect(loadVit(device, src, { imageSize: 32 })).rejects.toThrow(
      /edited-timm-f32\.safetensors \(timm naming\): missing weights: blocks\.1\.mlp\.fc1\.weight, blocks\.1\.mlp\.fc1\.bias, blocks\.1\.mlp\.fc2\.weight, blocks\.1\.mlp\.fc2\.bias, norm\.bias/,
    );
  });

  it('a tensor of the wrong shape names itself', async () => {
    const src = bytesSource(readFileSync(`${DIR}hf-vit-f32.safetensors`), 'x');
    const header = await readHeader(src);
    const tensors = [];
    for (const info of header.tensors.values()) {
      const data = await readTensorF32(src, info);
      if (info.name === 'vit.encoder.layer.1.attention.attention.key.weight') {
        tensors.push({ name: info.name, dtype: 'F32' as const, shape: [16, 32], data: data.slice(0, 512) });
      } else tensors.push({ name: info.name, dtype: 'F32' as const, shape: info.shape, data });
    }
    const chunks = encodeSafetensors(tensors);
    const all = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
    let o = 0;
    for (const c of chunks) (all.set(c, o), (o += c.length));
    await expect(loadVit(device, bytesSource(all, 'bad.safetensors'), { imageSize: 32, heads: 2 })).rejects.toThrow(
      /bad\.safetensors: vit\.encoder\.layer\.1\.attention\.attention\.query\.weight \[32, 32\] \+ vit\.encoder\.layer\.1\.attention\.attention\.key\.weight \[16, 32\] \+ .* does not fit blocks\.1\.attn\.qkv\.weight \[96, 32\]/,
    );
  });

  it('a tensor with the right number of values but another shape is refused, naming file, tensor and both shapes', async () => {
    const src = bytesSource(readFileSync(`${DIR}timm-f32.safetensors`), 'timm-f32.safetensors');
    const header = await readHeader(src);
    const tensors = [];
    for (const info of header.tensors.values()) {
      const data = await readTensorF32(src, info);
      // [64, 32] stored as [32, 64]: the same 2048 values, transposed shape.
      const shape = info.name === 'blocks.1.mlp.fc1.weight' ? [info.shape[1], info.shape[0]] : info.shape;
      tensors.push({ name: info.name, dtype: 'F32' as const, shape, data });
    }
    expect(header.tensors.get('blocks.1.mlp.fc1.weight')!.shape).toEqual([64, 32]);
    const chunks = encodeSafetensors(tensors);
    const all = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
    let o = 0;
    for (const c of chunks) (all.set(c, o), (o += c.length));
    await expect(loadVit(device, bytesSource(all, 'transposed.safetensors'), { imageSize: 32, heads: 2 })).rejects.toThrow(
      'transposed.safetensors: blocks.1.mlp.fc1.weight [32, 64] does not fit blocks.1.mlp.fc1.weight [64, 32] of a vit-32w-p8 model',
    );
  });

  it('a head whose row count disagrees with the label names in the metadata is refused, naming file and counts', async () => {
    const model = new VisionTransformer(device, presetConfig('vit-tiny-test', { labels: 2 }), { seed: 3 });
    const { tensors, metadata } = await vitCheckpointTensors(model, { labels: 'a,b,c' });
    model.dispose();
    const chunks = encodeSafetensors(tensors, metadata);
    const all = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
    let o = 0;
    for (const c of chunks) (all.set(c, o), (o += c.length));
    await expect(loadVit(device, bytesSource(all, 'mislabeled.safetensors'))).rejects.toThrow(
      'mislabeled.safetensors: the head has 2 outputs (head.weight [2, 32]), but the metadata names 3 labels (a, b, c)',
    );
    // A requested label count does not hide it either: the file itself is inconsistent.
    await expect(loadVit(device, bytesSource(all, 'mislabeled.safetensors'), { labels: 5 })).rejects.toThrow(/the head has 2 outputs/);
  });

  it('not a ViT: says what it looked for', async () => {
    const chunks = encodeSafetensors([{ name: 'fc.weight', dtype: 'F32', shape: [2, 2], data: new Float32Array(4) }]);
    const bytes = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
    let o = 0;
    for (const c of chunks) (bytes.set(c, o), (o += c.length));
    await expect(loadVit(device, bytesSource(bytes, 'resnet.safetensors'))).rejects.toThrow(/resnet\.safetensors: no patch embedding found/);
  });

  it("vitgpu's own checkpoints round-trip (config in __metadata__, same outputs)", async () => {
    const model = new VisionTransformer(device, presetConfig('vit-tiny-test', { labels: 4, layerScale: true }), { seed: 3 });
    const { tensors, metadata } = await vitCheckpointTensors(model, { labels: 'a,b,c,d' });
    const path = join(mkdtempSync(join(tmpdir(), 'vitgpu-ckpt-')), 'model.safetensors');
    await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
    const src = await openFileSource(path);
    const { model: again, report } = await loadVit(device, src);
    await src.close();
    expect(report.format).toBe('vitgpu');
    expect(again.config).toMatchObject({ patchSize: 8, width: 32, heads: 2, labels: 4, imageSize: 32, layerScale: true });
    const img = device.tensor(seededValues(3 * 32 * 32, 1, 0, 1), [1, 3, 32, 32]);
    expectClose(await again.predict(img).logits!.data(), await model.predict(img).logits!.data(), { atol: 0, rtol: 0 });
    model.dispose();
    again.dispose();
  });
});
