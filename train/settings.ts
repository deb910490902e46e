// The training settings of a run: what `vitgpu train` takes, what a run stores in config.json and its
// checkpoints, and what the Trainer runs with. One type for all three.

import type { RotateInterpolation } from '../datasets/augment.js';
import type { LoraSettings } from '../models/lora.js';
import type { Precision } from '../engine/precision.js';

export interface TrainOptions {
  /** Maximum epochs. */
  epochs: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  /** Batches per optimizer step. */
  gradAccum: number;
  warmupSteps: number;
  /** Cosine decay of the learning rate to minLr after the warmup. */
  cosine: boolean;
  minLr: number;
  /** Global gradient-norm clipping (0: none). */
  clipNorm: number;
  /** Epochs without a better validation AUC before stopping (0: never stop early). */
  patience: number;
  /** Seed of initialization, shuffling and augmentation. */
  seed: number;
  /** Flip + rotation of training images. */
  augment: boolean;
  rotation: RotateInterpolation;
  /** Checkpoint inside epochs every this many minutes (default 30; 0: per epoch only). */
  checkpointMinutes?: number;
  /** ... or every this many optimizer steps (0: off). */
  checkpointSteps?: number;
  /** Train on this fraction of the training split (datasets/subset.ts; default 1: all of it). */
  trainFraction?: number;
  /** Seed of the subset (default: `seed`); one seed's subsets are nested. */
  subsetSeed?: number;
  /** Positives each label keeps in the subset where the split has them (default 1). */
  minPositives?: number;
  /** LoRA: low-rank adapters on a frozen backbone, trained with the head (absent or null: full fine-tuning). */
  lora?: LoraSettings | null;
  /** Train the head only; the backbone stays as initialized. */
  freezeBackbone?: boolean;
  /**
   * With freezeBackbone: where the backbone's embeddings come from. 'auto' (default): extracted once
   * into RUN/features and reused; 'off': the backbone runs on every batch; or a `vitgpu features` folder.
   */
  features?: string;
  /** Recompute each block in backward instead of keeping its activations (same gradients, less memory). */
  checkpointActivations?: boolean;
  /**
   * 'mixed': the linear layers read f16 operands and accumulate in f32, with dynamic loss scaling
   * (train/loss-scale.ts); absent or 'f32': f32 throughout, as the paper.
   */
  precision?: Precision;
  /** Mixed precision: the initial loss scale (default 65536). */
  lossScale?: number;
}

/** Seconds between checkpoints inside an epoch (0: only at epoch ends). */
export function checkpointSeconds(t: TrainOptions): number {
  return (t.checkpointMinutes ?? 30) * 60;
}
