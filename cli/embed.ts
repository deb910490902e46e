// `vitgpu embed`: the final-norm CLS embedding (and head logits) of one image, as PyTorch would give.

import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { loadVit } from '../models/load.js';
import { openFileSource } from '../engine/node.js';
import { checkNormalize } from '../datasets/image.js';
import { predictImage } from '../models/predict.js';
import { action, openDevice, withDeviceOptions, withPrecisionOption, type DeviceFlags } from './run.js';
import { positiveInt } from './options.js';
import { DICOM_WINDOW_HELP, dicomWindowFlag } from './data-options.js';

interface EmbedFlags extends DeviceFlags {
  weights: string;
  image: string;
  arch: string;
  imageSize?: string;
  heads?: string;
  normalize: string;
  dicomWindow?: string;
  json?: boolean;
}

export function registerEmbed(program: Command): void {
  withDeviceOptions(withPrecisionOption(
    program
      .command('embed')
      .description('compute the final-norm CLS embedding (and logits) of an image')
      .requiredOption('--weights <file>', 'safetensors checkpoint (timm, DINOv2 hub, HF ViT/Dinov2, or vitgpu)')
      .requiredOption('--image <file>', 'PNG, JPEG or DICOM image')
      .option('--arch <name>', 'auto, or a preset the checkpoint must match (vit-b16, vit-b14, ...)', 'auto')
      .option('--image-size <n>', 'input size (default: the checkpoint\'s, else 224)')
      .option('--heads <n>', 'attention heads (not stored in checkpoints; default: width / 64)')
      .option('--normalize <mode>', 'none (pixels / 255), imagenet, or half', 'none')
      .option('--dicom-window <policy>', DICOM_WINDOW_HELP)
      .option('--json', 'print one JSON object: {"embedding": [...], "logits": [...] | null}')),
  ).action(
    action(async (opts: EmbedFlags) => {
      const normalize = checkNormalize(opts.normalize);
      const imageSize = positiveInt(opts.imageSize, '--image-size');
      const heads = positiveInt(opts.heads, '--heads');
      const dicomWindow = dicomWindowFlag(opts.dicomWindow);
      const device = await openDevice(opts);
      const src = await openFileSource(opts.weights);
      let loaded;
      try {
        loaded = await loadVit(device, src, { arch: opts.arch, imageSize, heads });
      } finally {
        await src.close();
      }
      const { model, report } = loaded;
      const size = model.config.imageSize;
      const bytes = new Uint8Array(await readFile(opts.image));
      const { embedding, logits } = await predictImage(model, bytes, opts.image, { normalize, dicomWindow });
      const out = { embedding: Array.from(embedding), logits: logits ? Array.from(logits) : null };
      if (opts.json) {
        console.log(JSON.stringify(out));
        return;
      }
      console.error(`${report.format} checkpoint, ${report.config.name} at ${size} px (${Object.entries(report.dtypes).map(([k, v]) => `${v} ${k}`).join(', ')})`);
      if (report.unexpected.length) console.error(`skipped: ${report.unexpected.join(', ')}`);
      const fmt = (xs: number[]) => `[${xs.slice(0, 8).map((v) => v.toFixed(5)).join(', ')}${xs.length > 8 ? `, … (${xs.length})` : ''}]`;
      console.log(`embedding ${fmt(out.embedding)}`);
      if (out.logits) console.log(`logits    ${fmt(out.logits)}`);
    }),
  );
}
