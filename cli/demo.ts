// `vitgpu demo` (what `npm start` runs): the paper's comparison in miniature, on synthetic radiographs.
// It writes a small radiograph-like target dataset and a three times larger pretraining set of the same
// kind of images and findings (standing in for a large pretraining corpus), pretrains a small ViT on
// the larger set (stage "pretrain"), fine-tunes that model (stage "pretrained") and a randomly
// initialized one (stage "random") on the target's small training split, and compares the two on the
// target's test split, which is half the target set so that the intervals are meaningful, with paired
// bootstrap p-values and ROC curves. Each stage writes runs/<stage name>.

import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { writeSyntheticDataset } from '../train/demo-data-node.js';
import type { RunConfig } from '../runs/config.js';
import { trainRun } from '../runs/train-node.js';
import { predictRun, validationThresholds } from '../runs/predict-node.js';
import { writeEvaluation } from '../runs/evaluate-node.js';
import { ImagePool } from '../datasets/image-pool-node.js';
import { action, openDevice, withDeviceOptions, type DeviceFlags } from './run.js';
import { consoleReporter } from './progress.js';
import { nonNegativeInt, positiveInt } from './options.js';

interface DemoFlags extends DeviceFlags {
  out: string;
  images: string;
  epochs: string;
  resamples: string;
  seed: string;
  fresh?: boolean;
}

export function registerDemo(program: Command): void {
  withDeviceOptions(
    program
      .command('demo')
      .description('fine-tune a small ViT from two initializations on synthetic radiographs and compare them')
      .option('--out <dir>', 'where the data, runs and report go', 'demo-out')
      .option('--images <n>', 'images in the target dataset (30% train, 20% valid, 50% test); the pretraining set has 3 times as many', '500')
      .option('--epochs <n>', 'epochs of pretraining and of each fine-tuning', '12')
      .option('--resamples <n>', 'bootstrap resamples', '1000')
      .option('--seed <n>', 'seed of the synthetic data and of the training runs', '0')
      .option('--fresh', 'delete previous demo runs first'),
  ).action(
    action(async (f: DemoFlags) => {
      const started = performance.now();
      const out = resolve(f.out);
      const images = positiveInt(f.images, '--images')!;
      const epochs = positiveInt(f.epochs, '--epochs')!;
      const resamples = positiveInt(f.resamples, '--resamples')!;
      const seed = nonNegativeInt(f.seed, '--seed')!;
      const device = await openDevice(f);
      console.log(`vitgpu demo on ${device.name}`);
      console.log(`features: ${device.info.features.join(', ') || 'none'}\n`);
      if (f.fresh || existsSync(join(out, 'runs'))) await rm(join(out, 'runs'), { recursive: true, force: true });

      console.log('1. Writing synthetic radiographs (PNG, 8- and 16-bit) and master lists');
      const pretrainCsv = await writeSyntheticDataset(join(out, 'data', 'pretrain'), { images: 3 * images, size: 96, seed: 1001 + 7919 * seed, fractions: { train: 0.8, valid: 0.15 } });
      const targetCsv = await writeSyntheticDataset(join(out, 'data', 'target'), { images, size: 96, seed: 2002 + 7919 * seed, fractions: { train: 0.3, valid: 0.2 } });

      const base = (data: string, init: string, seed: number, ep: number): RunConfig => ({
        data: { data, preset: 'demo', filter: 'lanczos', normalize: 'none', cacheDir: undefined },
        model: { arch: 'vit-tiny-test', init, imageSize: 32 },
        train: {
          epochs: ep, batchSize: 16, lr: 3e-4, weightDecay: 0, gradAccum: 1, warmupSteps: 20, cosine: false, minLr: 0,
          clipNorm: 0, patience: 0, seed, augment: true, rotation: 'nearest',
        },
      });
      const runs = join(out, 'runs');
      // Each stage is named after its run folder: [pretrain] writes runs/pretrain, and so on.
      const stages: { name: string; what: string; config: RunConfig }[] = [
        { name: 'pretrain', what: 'Pretraining on the larger synthetic set (stands in for a pretrained checkpoint)', config: base(pretrainCsv, 'random', 10 * seed + 1, epochs) },
        { name: 'random', what: 'Fine-tuning from a random initialization', config: base(targetCsv, 'random', 10 * seed + 2, epochs) },
        { name: 'pretrained', what: 'Fine-tuning from the pretrain run\'s weights', config: base(targetCsv, join(runs, 'pretrain'), 10 * seed + 2, epochs) },
      ];
      for (const [i, { name, what, config }] of stages.entries()) {
        console.log(`\n${i + 2}. ${what} -> ${join(runs, name)}`);
        await trainRun(device, join(runs, name), config, { reporter: consoleReporter({ label: name }) });
      }

      console.log(`\n5. Comparing the two initializations on the target test split (${resamples} paired bootstrap resamples)`);
      const pool = new ImagePool({});
      try {
        const reporter = consoleReporter({ quiet: true });
        const preds = [
          await predictRun(device, join(runs, 'pretrained'), { split: 'test', reporter, name: 'pretrained', pool }),
          await predictRun(device, join(runs, 'random'), { split: 'test', reporter, name: 'random', pool }),
        ];
        // As `vitgpu compare` does by default: each run's thresholds come from its validation split.
        const thresholds = {
          pretrained: (await validationThresholds(device, join(runs, 'pretrained'), { reporter, pool })).thresholds,
          random: (await validationThresholds(device, join(runs, 'random'), { reporter, pool })).thresholds,
        };
        const { table, files } = await writeEvaluation(preds, join(out, 'report'), { resamples, seed: 0, baseline: 'random', split: 'test', thresholds });
        console.log(`\n${table.split('\n\n## ')[0]}`);
        console.log(`\nReport: ${files.join(', ')}`);
      } finally {
        await pool.close();
      }
      console.log(`\nDone in ${((performance.now() - started) / 1000).toFixed(0)} s. The same on real data:`);
      console.log('  npx vitgpu train --data master_list.csv --preset vindr-cxr --init dinov2_vitb14.safetensors --out runs/dinov2');
      console.log('  npx vitgpu train --data master_list.csv --preset vindr-cxr --init vit_base_patch16_224.augreg_in21k.safetensors --out runs/imagenet');
      console.log('  npx vitgpu compare runs/dinov2 runs/imagenet --out report');
    }),
  );
}
