// `vitgpu features`: a frozen backbone's embeddings of every image of a master list's splits (final-norm
// CLS and patch-token mean), one safetensors file per split (format: runs/features-node.ts).

import { mkdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { VitgpuError } from '../engine/errors.js';
import { splitSamples, type Split } from '../datasets/dataset.js';
import { ImagePool } from '../datasets/image-pool-node.js';
import { openData } from '../runs/data-node.js';
import { extractFeatures, featureSource, writeFeatures } from '../runs/features-node.js';
import { loadModelFile, sha256File } from '../runs/model-file-node.js';
import { runFiles, runSettings } from '../runs/run-dir-node.js';
import { action, openDevice, withDeviceOptions, type DeviceFlags } from './run.js';
import { dataOptions, withDataOptions, type DataFlags } from './data-options.js';
import { list, oneOf, positiveInt } from './options.js';
import { consoleReporter } from './progress.js';

interface FeaturesFlags extends DeviceFlags, DataFlags {
  weights?: string;
  run?: string;
  out: string;
  splits: string;
  arch: string;
  imageSize?: string;
  heads?: string;
  batchSize: string;
}

export function registerFeatures(program: Command): void {
  const cmd = program
    .command('features')
    .description('write a frozen backbone\'s embeddings (final-norm CLS, patch-token mean) per split as safetensors, for linear probes (train --freeze-backbone --features DIR)')
    .option('--weights <file>', 'a checkpoint (any naming vitgpu reads, or a LoRA run\'s adapters)')
    .option('--run <dir>', 'a vitgpu run: its best model, image size and preprocessing')
    .requiredOption('--out <dir>', 'folder for SPLIT.safetensors')
    .option('--splits <a,b>', 'splits to extract', 'train,valid,test')
    .option('--arch <name>', 'with --weights: auto, or a preset the checkpoint must match', 'auto')
    .option('--image-size <n>', 'with --weights: input size (default 224)')
    .option('--heads <n>', 'with --weights: attention heads when the checkpoint cannot tell')
    .option('--batch-size <n>', 'images per batch', '32');
  withDeviceOptions(withDataOptions(cmd, true)).action(
    action(async (f: FeaturesFlags, command: Command) => {
      if (Boolean(f.weights) === Boolean(f.run)) throw new VitgpuError('give one of --weights FILE or --run RUN');
      const splits = (list(f.splits) ?? []).map((s) => oneOf(s, '--splits', ['train', 'valid', 'test'] as const)!) as Split[];
      const reporter = consoleReporter();
      let file = f.weights ?? '';
      let imageSize = positiveInt(f.imageSize, '--image-size') ?? 224;
      let data = dataOptions(f);
      if (f.run) {
        const { config } = await runSettings(f.run);
        file = runFiles(f.run).best;
        imageSize = config.model.imageSize;
        // The run's preprocessing unless the command line says otherwise.
        const fromCli = (o: string) => command.getOptionValueSource(o) === 'cli';
        data = { ...data, normalize: fromCli('normalize') ? data.normalize : config.data.normalize, filter: fromCli('resize') ? data.filter : config.data.filter };
      }
      if (!(await stat(file).catch(() => null))?.isFile()) throw new VitgpuError(`${file}: no such checkpoint file`);
      const device = await openDevice(f);
      const model = await loadModelFile(device, file, f.run ? {} : { arch: f.arch, imageSize, heads: positiveInt(f.heads, '--heads') });
      const pool = new ImagePool({ workers: data.workers });
      try {
        const opened = await openData(data, model.config.imageSize, reporter, splits, pool);
        const key = {
          source: featureSource({ sha256: await sha256File(file), bytes: (await stat(file)).size }),
          imageSize: model.config.imageSize, normalize: data.normalize, filter: data.filter,
        };
        await mkdir(f.out, { recursive: true });
        for (const split of splits) {
          const samples = splitSamples(opened.samples, split);
          if (!samples.length) continue;
          const feats = await extractFeatures(model, samples, data, opened.imageRoot, positiveInt(f.batchSize, '--batch-size')!, pool);
          const out = join(f.out, `${split}.safetensors`);
          await writeFeatures(out, split, feats, opened.list.labelNames, key);
          reporter.info(`${out}: ${samples.length} images × ${feats.width} (cls, patch_mean) from ${resolve(file)}`);
        }
      } finally {
        reporter.stop();
        await pool.close();
        model.dispose();
      }
    }),
  );
}
