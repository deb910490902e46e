// `vitgpu train`: fine-tune a ViT on a chest-radiograph master list.

import type { Command } from 'commander';
import { VitgpuError } from '../engine/errors.js';
import { PRESETS } from '../models/vit.js';
import { LORA_DEFAULTS, LORA_TARGETS, type LoraSettings } from '../models/lora.js';
import type { RunConfig } from '../runs/config.js';
import { trainRun } from '../runs/train-node.js';
import { PRECISION_HELP, action, openDevice, withDeviceOptions, type DeviceFlags } from './run.js';
import { PRECISIONS } from '../engine/precision.js';
import { dataOptions, withDataOptions, type DataFlags } from './data-options.js';
import { fraction, nonNegativeInt, nonNegativeNumber, oneOf, positiveInt, positiveNumber } from './options.js';
import { consoleReporter } from './progress.js';

interface TrainFlags extends DeviceFlags, DataFlags {
  init?: string;
  arch: string;
  imageSize?: string;
  heads?: string;
  epochs: string;
  batchSize: string;
  lr: string;
  weightDecay: string;
  gradAccum: string;
  warmupSteps: string;
  cosine?: boolean;
  minLr: string;
  clipNorm: string;
  patience: string;
  seed: string;
  augment: boolean;
  rotation: string;
  out: string;
  resume?: boolean;
  force?: boolean;
  checkpointMinutes: string;
  checkpointSteps: string;
  trainFraction: string;
  subsetSeed?: string;
  minPositives: string;
  loraRank?: string;
  loraAlpha?: string;
  loraDropout?: string;
  loraTargets?: string;
  freezeBackbone?: boolean;
  features?: string;
  checkpointActivations?: boolean;
  lossScale?: string;
}

export function registerTrain(program: Command): void {
  const cmd = program
    .command('train')
    .description('fine-tune a ViT on a chest-radiograph dataset (BCE with pos_weight, AdamW, validation AUC each epoch)')
    .requiredOption('--out <run-dir>', 'run directory: best.safetensors, last/, log.jsonl, config.json')
    .option('--init <file|run|random>', 'initialization: a safetensors checkpoint (timm, DINOv2, HF), a vitgpu run directory, or random')
    .option('--arch <name>', `architecture (${Object.keys(PRESETS).join(', ')}); with a checkpoint: auto or a preset it must match`, 'auto')
    .option('--image-size <n>', 'input size (default: 224 with a checkpoint, the preset\'s with random)')
    .option('--heads <n>', 'attention heads when the checkpoint cannot tell (default width / 64)')
    .option('--epochs <n>', 'maximum epochs', '100')
    .option('--batch-size <n>', 'images per batch', '30')
    .option('--lr <x>', 'AdamW learning rate (the paper: 1e-5)', '1e-5')
    .option('--weight-decay <x>', 'AdamW weight decay (the paper: 0)', '0')
    .option('--grad-accum <n>', 'batches per optimizer step', '1')
    .option('--warmup-steps <n>', 'linear warmup steps', '0')
    .option('--cosine', 'cosine decay of the learning rate to --min-lr')
    .option('--min-lr <x>', 'learning rate floor of the cosine decay', '0')
    .option('--clip-norm <x>', 'clip the global gradient norm (0: off)', '0')
    .option('--patience <n>', 'stop after this many epochs without a better validation AUC (0: never)', '10')
    .option('--seed <n>', 'seed for initialization, shuffling and augmentation', '0')
    .option('--no-augment', 'no flip/rotation augmentation')
    .option('--rotation <mode>', 'rotation resampling: nearest (torchvision\'s default) or bilinear', 'nearest')
    .option('--checkpoint-minutes <n>', 'also checkpoint inside epochs this often (0: once per epoch)', '30')
    .option('--checkpoint-steps <n>', 'also checkpoint inside epochs every N optimizer steps (0: off)', '0')
    .option('--train-fraction <f>', 'train on this fraction (0, 1] of the training split: stratified, nested across fractions of one subset seed', '1')
    .option('--subset-seed <n>', 'seed of the training subset (default: --seed)')
    .option('--min-positives <n>', 'positives every label keeps in the training subset, where the split has them', '1')
    .option('--lora-rank <r>', 'LoRA: train rank-R adapters and the head on a frozen backbone (the follow-up paper: 16)')
    .option('--lora-alpha <a>', `LoRA scale numerator (update scaled by alpha / rank; default ${LORA_DEFAULTS.alpha})`)
    .option('--lora-dropout <p>', `LoRA: dropout on the adapters' input while training (default ${LORA_DEFAULTS.dropout})`)
    .option('--lora-targets <t>', `LoRA: ${LORA_TARGETS.join(' | ')} (qv: the q and v row blocks of the fused qkv; default ${LORA_DEFAULTS.targets})`)
    .option('--freeze-backbone', 'train the head only (a linear probe on the frozen backbone\'s final-norm CLS embeddings; no augmentation)')
    .option('--features <dir|auto|off>', 'with --freeze-backbone: embeddings from `vitgpu features` in DIR; auto: extracted once into RUN/features and reused; off: the backbone runs every batch', 'auto')
    .option('--checkpoint-activations', 'recompute each transformer block in backward instead of keeping its activations (same gradients, less memory, ~1.3× the time)')
    .option('--precision <mode>', `${PRECISION_HELP} (mixed: with dynamic loss scaling; stored in the run)`)
    .option('--loss-scale <x>', 'with --precision mixed: the initial loss scale (default 65536; halved on every step whose gradients overflow, doubled after 2000 good ones)')
    .option('--resume', 'continue the run in --out from its last checkpoint, with its own settings (with --data / --image-root: where a moved dataset is now)')
    .option('--force', 'with --resume: continue even though the training split changed since the run started');
  withDeviceOptions(withDataOptions(cmd, false)).action(
    action(async (f: TrainFlags, command: Command) => {
      const reporter = consoleReporter();
      const given = command.options
        .filter((o) => command.getOptionValueSource(o.attributeName()) === 'cli')
        .map((o) => o.long ?? o.flags);
      if (!f.resume) {
        if (!f.data) throw new VitgpuError('--data is required (the master-list CSV)');
        if (!f.init) throw new VitgpuError('--init is required: a checkpoint file, a vitgpu run directory, or random');
        if (f.force) throw new VitgpuError('--force goes with --resume only');
      }
      const requested = runConfig(f);
      const t = requested.train;
      if (!f.resume && t.lora) {
        if (!t.lora.rank) throw new VitgpuError('--lora-alpha, --lora-dropout and --lora-targets go with --lora-rank R');
        if (t.freezeBackbone) throw new VitgpuError('--lora-rank and --freeze-backbone exclude each other (LoRA already freezes the backbone and trains adapters with the head)');
      }
      if (!f.resume && t.lossScale !== undefined && t.precision !== 'mixed') throw new VitgpuError('--loss-scale goes with --precision mixed (f32 training scales no loss)');
      if (!f.resume && given.includes('--features') && !t.freezeBackbone) throw new VitgpuError('--features goes with --freeze-backbone (cached embeddings serve a probe that trains the head only)');
      if (!f.resume && t.freezeBackbone && t.augment) {
        // The probe learns from fixed embeddings, which augmentation would change every epoch.
        t.augment = false;
        reporter.info('--freeze-backbone: training without augmentation (the head learns from fixed embeddings)');
      }
      const device = await openDevice(f);
      const { state: final, config, alreadyDone } = await trainRun(device, f.out, f.resume ? null : requested, {
        reporter,
        resume: f.resume ? { requested, given, relocate: { data: f.data, imageRoot: f.imageRoot }, force: Boolean(f.force) } : undefined,
      });
      reporter.stop();
      const best = final.history.find((r) => r.epoch === final.bestEpoch);
      const early = final.epoch < config.train.epochs && !final.batch;
      console.log(`\n${f.out}: ${final.epoch} epoch(s)${early ? ' (stopped early)' : ''}${alreadyDone ? ', already complete' : ''}`);
      console.log('epoch  train loss  valid loss  valid AUC');
      for (const r of final.history) {
        console.log(`${String(r.epoch).padStart(5)}  ${r.trainLoss.toFixed(4).padStart(10)}  ${r.valLoss.toFixed(4).padStart(10)}  ${r.valAuc.toFixed(4).padStart(9)}${r.best ? '  *' : ''}`);
      }
      if (best) console.log(`best: epoch ${best.epoch}, valid mean AUC ${best.valAuc.toFixed(4)} -> ${f.out}/best.safetensors`);
    }),
  );
}

/** The run settings the options give, as a new run takes them. */
function runConfig(f: TrainFlags): RunConfig {
  const init = f.init ?? 'random';
  const arch = f.arch === 'auto' && init === 'random' ? 'vit-b16' : f.arch;
  return {
    data: dataOptions({ ...f, data: f.data ?? '' }),
    model: {
      arch,
      init,
      // Random init: the preset's own size; a checkpoint: 224, the paper's input.
      imageSize: positiveInt(f.imageSize, '--image-size') ?? (init === 'random' && PRESETS[arch] ? PRESETS[arch].imageSize : 224),
      heads: positiveInt(f.heads, '--heads'),
    },
    train: {
      epochs: positiveInt(f.epochs, '--epochs')!,
      batchSize: positiveInt(f.batchSize, '--batch-size')!,
      lr: nonNegativeNumber(f.lr, '--lr')!,
      weightDecay: nonNegativeNumber(f.weightDecay, '--weight-decay')!,
      gradAccum: positiveInt(f.gradAccum, '--grad-accum')!,
      warmupSteps: nonNegativeInt(f.warmupSteps, '--warmup-steps')!,
      cosine: Boolean(f.cosine),
      minLr: nonNegativeNumber(f.minLr, '--min-lr')!,
      clipNorm: nonNegativeNumber(f.clipNorm, '--clip-norm')!,
      patience: nonNegativeInt(f.patience, '--patience')!,
      seed: nonNegativeInt(f.seed, '--seed')!,
      augment: f.augment,
      rotation: oneOf(f.rotation, '--rotation', ['nearest', 'bilinear'] as const)!,
      checkpointMinutes: nonNegativeNumber(f.checkpointMinutes, '--checkpoint-minutes')!,
      checkpointSteps: nonNegativeInt(f.checkpointSteps, '--checkpoint-steps')!,
      trainFraction: fraction(f.trainFraction, '--train-fraction')!,
      subsetSeed: nonNegativeInt(f.subsetSeed, '--subset-seed'),
      minPositives: nonNegativeInt(f.minPositives, '--min-positives')!,
      lora: loraSettings(f),
      freezeBackbone: Boolean(f.freezeBackbone),
      features: f.features,
      checkpointActivations: Boolean(f.checkpointActivations),
      precision: oneOf(f.precision, '--precision', PRECISIONS) ?? 'f32',
      lossScale: positiveNumber(f.lossScale, '--loss-scale'),
    },
  };
}

/** --lora-*: null without any of them; --lora-rank is required with the others (checked on new runs). */
function loraSettings(f: TrainFlags): LoraSettings | null {
  if ([f.loraRank, f.loraAlpha, f.loraDropout, f.loraTargets].every((v) => v === undefined)) return null;
  return {
    rank: positiveInt(f.loraRank, '--lora-rank') ?? 0,
    alpha: nonNegativeNumber(f.loraAlpha, '--lora-alpha') ?? LORA_DEFAULTS.alpha,
    dropout: nonNegativeNumber(f.loraDropout, '--lora-dropout') ?? LORA_DEFAULTS.dropout,
    targets: oneOf(f.loraTargets, '--lora-targets', LORA_TARGETS) ?? LORA_DEFAULTS.targets,
  };
}
