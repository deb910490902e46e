// Peak GPU memory and time of one ViT training step: full fine-tuning, LoRA and a frozen-backbone probe
// (backbone run every batch), each with and without activation checkpointing. `npm run bench:train-memory
// -- [--arch vit-b16] [--image-size 512] [--batch 1,2] [--depth N] [--json FILE]`; results with device
// and command in bench/TRAIN-MEMORY.md.
//
// Each case builds the model, takes one step (AdamW moments are created, pipelines built), then measures
// a second step: the peak of live GPU bytes during it (weights, moments and gradients included) and how
// much of that is above what was live before it (activations, gradients, workspace).

import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { AdamW, createNodeDevice, tidy, type Device, type Tensor } from '../engine/node.js';
import { VisionTransformer, presetConfig } from '../models/vit.js';
import { LoraAdapters, freezeBackbone } from '../models/lora.js';
import { loraTrainable } from '../models/lora-file.js';

type Mode = 'full' | 'lora-qv-r16' | 'probe';

interface Record {
  arch: string; depth: number; imageSize: number; batch: number; mode: Mode; checkpointActivations: boolean;
  trainable: number; peakMiB: number; aboveMiB: number; stepSeconds: number;
}

async function measure(device: Device, arch: string, depth: number, imageSize: number, batch: number, mode: Mode, ck: boolean): Promise<Record> {
  const model = new VisionTransformer(device, presetConfig(arch, { imageSize, depth, labels: 14 }), { seed: 0 });
  let lora: LoraAdapters | null = null;
  let trainable: ReadonlyMap<string, Tensor> = model.params;
  if (mode === 'lora-qv-r16') {
    freezeBackbone(model);
    lora = new LoraAdapters(device, model.config, { rank: 16, alpha: 16, dropout: 0.05, targets: 'qv' });
    model.adapters = lora;
    trainable = loraTrainable(model, lora);
  } else if (mode === 'probe') {
    freezeBackbone(model);
    trainable = new Map(['head.weight', 'head.bias'].map((n) => [n, model.param(n)]));
  }
  model.checkpointActivations = ck;
  const opt = new AdamW([...trainable.values()], { lr: 1e-5, weightDecay: 0 });
  const images = device.randn([batch, 3, imageSize, imageSize], { seed: 1 });
  const step = async () => {
    if (lora) lora.dropoutSeed = 7;
    tidy(() => model.forward(images).logits!.sigmoid().mean().backward());
    opt.step();
    opt.zeroGrad();
    await device.sync();
  };
  await step();
  const before = device.memory().liveBytes;
  device.resetPeakMemory();
  const t0 = performance.now();
  await step();
  const seconds = (performance.now() - t0) / 1000;
  const peak = device.memory().peakBytes;
  const count = [...trainable.values()].reduce((n, t) => n + t.size, 0);
  images.dispose();
  opt.dispose();
  lora?.dispose();
  model.dispose();
  const mib = (b: number) => Math.round((b / 2 ** 20) * 10) / 10;
  return { arch, depth, imageSize, batch, mode, checkpointActivations: ck, trainable: count, peakMiB: mib(peak), aboveMiB: mib(peak - before), stepSeconds: Math.round(seconds * 100) / 100 };
}

const program = new Command()
  .option('--arch <name>', 'preset', 'vit-b16')
  .option('--image-size <n>', 'input size', '512')
  .option('--batch <list>', 'batch sizes', '1,2')
  .option('--depth <n>', 'blocks (default: the preset\'s; fewer to fit a slow adapter\'s time)')
  .option('--modes <list>', 'full, lora-qv-r16, probe', 'full,lora-qv-r16,probe')
  .option('--json <file>', 'write the records as JSON')
  .parse();
const o = program.opts<{ arch: string; imageSize: string; batch: string; depth?: string; modes: string; json?: string }>();
const device = await createNodeDevice();
const depth = o.depth ? Number(o.depth) : presetConfig(o.arch).depth;
const records: Record[] = [];
console.log(`${device.name}: ${o.arch}, depth ${depth}, ${o.imageSize} px`);
console.log('| batch | mode | trainable | checkpointing | peak MiB | above weights MiB | step s |\n|---:|---|---:|---|---:|---:|---:|');
for (const batch of o.batch.split(',').map(Number)) {
  for (const mode of o.modes.split(',') as Mode[]) {
    for (const ck of [false, true]) {
      const r = await measure(device, o.arch, depth, Number(o.imageSize), batch, mode, ck);
      records.push(r);
      console.log(`| ${batch} | ${mode} | ${r.trainable.toLocaleString('en-US')} | ${ck ? 'yes' : 'no'} | ${r.peakMiB} | ${r.aboveMiB} | ${r.stepSeconds} |`);
    }
  }
}
if (o.json) writeFileSync(o.json, `${JSON.stringify({ device: device.name, date: new Date().toISOString(), records }, null, 2)}\n`);
process.exit(0);
