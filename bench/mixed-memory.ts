// Memory of one ViT training step, f32 against mixed precision (engine/precision.ts). `npm run
// bench:mixed-memory -- [--arch vit-s16] [--image-size 224] [--depth 2] [--batch 2]`; results in
// README ("Mixed precision").
//
// Two numbers per precision, on the second step (the first creates the AdamW moments and pipelines):
// - saved for backward: the bytes of the distinct buffers the autograd graph keeps for the backward
//   rules after the forward (activations; parameters excluded), and of them the matmul operands (the
//   linear layers' inputs and attention's q, k, v), which mixed precision keeps in f16;
// - peak: the most GPU memory live during the step (weights, moments, gradients and every tensor the
//   forward created, as the step's tidy() frees them only after backward).

import { Command } from 'commander';
import { AdamW, createNodeDevice, tidy, type Device, type Tensor } from '../engine/node.js';
import { VisionTransformer, presetConfig } from '../models/vit.js';
import type { Precision } from '../engine/precision.js';

/** Bytes of the distinct buffers the graph under `root` saves, other than `exclude`'s. */
function savedBytes(root: Tensor, exclude: ReadonlySet<unknown>): { bytes: number; f16: number; linear: number } {
  const buffers = new Map<unknown, { bytes: number; f16: boolean; linear: boolean }>();
  const seen = new Set<unknown>();
  const stack = [root.gradFn];
  while (stack.length) {
    const node = stack.pop();
    if (!node || seen.has(node)) continue;
    seen.add(node);
    for (const s of node.saved) {
      // A matmul operand: a linear layer's input x, attention's q, k, v (attentionQkv: the fused projection).
      const at = node.saved.indexOf(s);
      const linear = (node.name.startsWith('linear') && at === 0) || (node.name.startsWith('attentionQkv') && at === 0) ||
        (node.name.startsWith('attention ') || node.name === 'attention' ? at < 3 : false);
      const known = buffers.get(s.storage.buffer);
      if (!exclude.has(s.storage.buffer)) buffers.set(s.storage.buffer, { bytes: s.storage.buffer.bytes, f16: s.dtype === 'f16', linear: linear || Boolean(known?.linear) });
    }
    for (const t of node.inputs) stack.push(t.gradFn);
  }
  let bytes = 0;
  let f16 = 0;
  let linear = 0;
  for (const b of buffers.values()) {
    bytes += b.bytes;
    if (b.f16) f16 += b.bytes;
    if (b.linear) linear += b.bytes;
  }
  return { bytes, f16, linear };
}

async function measure(device: Device, arch: string, depth: number, imageSize: number, batch: number, precision: Precision, ck: boolean) {
  const model = new VisionTransformer(device, presetConfig(arch, { imageSize, depth, labels: 14 }), { seed: 0 });
  model.precision = precision;
  model.checkpointActivations = ck;
  const params = new Set<unknown>([...model.params.values()].map((t) => t.storage.buffer));
  const opt = new AdamW([...model.params.values()], { lr: 1e-5, weightDecay: 0 });
  const images = device.randn([batch, 3, imageSize, imageSize], { seed: 1 });
  let saved = { bytes: 0, f16: 0, linear: 0 };
  const step = async () => {
    tidy(() => {
      const loss = model.forward(images).logits!.sigmoid().mean();
      saved = savedBytes(loss, params);
      loss.backward();
    });
    opt.step();
    opt.zeroGrad();
    await device.sync();
  };
  await step();
  const before = device.memory().liveBytes;
  device.resetPeakMemory();
  await step();
  const peak = device.memory().peakBytes;
  images.dispose();
  opt.dispose();
  model.dispose();
  const mib = (b: number) => Math.round((b / 2 ** 20) * 10) / 10;
  return { precision, ck, savedMiB: mib(saved.bytes), linearMiB: mib(saved.linear), peakMiB: mib(peak), aboveMiB: mib(peak - before) };
}

const o = new Command()
  .option('--arch <name>', 'preset', 'vit-s16')
  .option('--image-size <n>', 'input size', '224')
  .option('--depth <n>', 'blocks', '2')
  .option('--batch <n>', 'images per step', '2')
  .parse()
  .opts<{ arch: string; imageSize: string; depth: string; batch: string }>();
const device = await createNodeDevice();
console.log(`${device.name}: ${o.arch}, depth ${o.depth}, ${o.imageSize} px, batch ${o.batch}`);
console.log('| precision | checkpointing | saved for backward MiB | of it matmul operands MiB | peak MiB | above weights MiB |\n|---|---|---:|---:|---:|---:|');
for (const ck of [false, true]) {
  for (const precision of ['f32', 'mixed'] as Precision[]) {
    const r = await measure(device, o.arch, Number(o.depth), Number(o.imageSize), Number(o.batch), precision, ck);
    console.log(`| ${precision} | ${ck ? 'yes' : 'no'} | ${r.savedMiB} | ${r.linearMiB} | ${r.peakMiB} | ${r.aboveMiB} |`);
  }
}
process.exit(0);
