// `vitgpu demo` (what `npm start` runs): the paper's comparison in miniature, on synthetic radiographs.
// It writes a small radiograph-like dataset, pretrains a small ViT on a larger synthetic set (standing in
// for a pretrained checkpoint), fine-tunes it and a randomly initialized one on the target set, and
// compares the two initializations on the test split with paired bootstrap p-values and ROC curves.

import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { writeSyntheticDataset } from '../train/demo-data-node.js';
import type { RunConfig } from '../runs/config.js';
import { trainRun } from '../runs/train-node.js';
import { predictRun } from '../runs/predict-node.js';
import { writeEvaluation } from '../runs/evaluate-node.js';
import { ImagePool } from '../datasets/image-pool-node.js';
import { action, openDevice, withDeviceOptions, type DeviceFlags } from './run.js';
import { consoleReporter } from './progress.js';
import { positiveInt } from './options.js';

interface DemoFlags extends DeviceFlags {
  out: string;
  images: string;
  epochs: string;
  resamples: string;
  fresh?: boolean;
}

export function registerDemo(program: Command): void {
  withDeviceOptions(
    program
      .command('demo')
      .description('fine-tune a small ViT from two initializations on synthetic radiographs and compare them')
      .option('--out <dir>', 'where the data, runs and report go', 'demo-out')
      .option('--images <n>', 'images in the target dataset', '400')
      .option('--epochs <n>', 'fine-tuning epochs per initialization', '12')
      .option('--resamples <n>', 'bootstrap resamples', '1000')
      .option('--fresh', 'delete previous demo runs first'),
  ).action(
    action(async (f: DemoFlags) => {
      const started = performance.now();
      const out = resolve(f.out);
      const images = positiveInt(f.images, '--images')!;
      const epochs = positiveInt(f.epochs, '--epochs')!;
      const resamples = positiveInt(f.resamples, '--resamples')!;
      const device = await openDevice(f);
      console.log(`vitgpu demo on ${device.name}`);
      console.log(`features: ${device.info.features.join(', ') || 'none'}\n`);
      if (f.fresh || existsSync(join(out, 'runs'))) await rm(join(out, 'runs'), { recursive: true, force: true });

      console.log('1. Writing synthetic radiographs (PNG, 8- and 16-bit) and master lists');
      const pretrainCsv = await writeSyntheticDataset(join(out, 'data', 'pretrain'), { images: 2 * images, size: 96, seed: 1001 });
      const targetCsv = await writeSyntheticDataset(join(out, 'data', 'target'), { images, size: 96, seed: 2002 });

      const base = (data: string, init: string, seed: number, ep: number): RunConfig => ({
        data: { data, preset: 'demo', filter: 'lanczos', normalize: 'none', cacheDir: undefined },
        model: { arch: 'vit-tiny-test', init, imageSize: 32 },
        train: {
          epochs: ep, batchSize: 16, lr: 1e-3, weightDecay: 0, gradAccum: 1, warmupSteps: 20, cosine: false, minLr: 0,
          clipNorm: 0, patience: 0, seed, augment: true, rotation: 'nearest',
        },
      });
      const runs = join(out, 'runs');
      const steps: [string, string, RunConfig][] = [
        ['pretrained', join(runs, 'pretrain'), base(pretrainCsv, 'random', 1, Math.round(epochs * 1.5))],
        ['random', join(runs, 'random'), base(targetCsv, 'random', 2, epochs)],
        ['from-pretrained', join(runs, 'pretrained'), base(targetCsv, join(runs, 'pretrain'), 2, epochs)],
      ];
      for (const [i, [label, dir, config]] of steps.entries()) {
        console.log(`\n${i + 2}. ${i === 0 ? 'Pretraining on a larger synthetic set (stands in for a pretrained checkpoint)' : `Fine-tuning from ${label === 'random' ? 'a random initialization' : 'the pretrained checkpoint'}`} -> ${dir}`);
        await trainRun(device, dir, config, { reporter: consoleReporter({ label }) });
      }

      console.log(`\n5. Comparing the two initializations on the target test split (${resamples} paired bootstrap resamples)`);
      const pool = new ImagePool({});
      try {
        const reporter = consoleReporter({ quiet: true });
        const preds = [
          await predictRun(device, join(runs, 'pretrained'), { split: 'test', reporter, name: 'pretrained', pool }),
          await predictRun(device, join(runs, 'random'), { split: 'test', reporter, name: 'random', pool }),
        ];
        const { table, files } = await writeEvaluation(preds, join(out, 'report'), { resamples, seed: 0, baseline: 'random', split: 'test' });
        console.log(`\n${table.split('\n\n## ')[0]}`);
        console.log(`\nReport: ${files.join(', ')}`);
      } finally {
        await pool.close();
      }
      console.log(`\nDone in ${((performance.now() - started) / 1000).toFixed(0)} s. The same on real data:`);
      console.log('  vitgpu train --data master_list.csv --preset vindr-cxr --init dinov2_vitb14.safetensors --out runs/dinov2');
      console.log('  vitgpu train --data master_list.csv --preset vindr-cxr --init vit_base_patch16_224.augreg_in21k.safetensors --out runs/imagenet');
      console.log('  vitgpu compare runs/dinov2 runs/imagenet --out report');
    }),
  );
}
