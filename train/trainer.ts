// The fine-tuning loop: BCE-with-logits (per-label pos_weight, ignored labels masked), AdamW with
// optional warmup/cosine schedule, gradient accumulation and global-norm clipping, validation each
// epoch (loss and mean AUC), best-model selection on the validation split, early stopping. Browser-safe:
// data and checkpoint I/O are injected (train/run-node.ts provides them in Node).

import type { Device } from '../engine/device.js';
import type { Tensor } from '../engine/tensor.js';
import { keep, tidy } from '../engine/scope.js';
import { noGrad } from '../engine/autograd.js';
import { bceWithLogits } from '../engine/ops/bce.js';
import { AdamW, gradNormScale } from '../engine/optim.js';
import { VitgpuError } from '../engine/errors.js';
import type { VisionTransformer } from '../models/vit.js';
import { rocAuc } from '../eval/metrics.js';
import { learningRate } from './schedule.js';

export interface Batch {
  /** [B, 3, S, S], preprocessed and (for training) augmented. */
  images: Float32Array;
  /** [B, L]: 1 / 0, or NaN where the label is ignored. */
  labels: Float32Array;
  paths: string[];
  size: number;
}

export interface BatchSource {
  readonly batchesPerEpoch: number;
  readonly samples: number;
  /** The batches of one epoch, in the order fixed by (seed, epoch), from batch `startBatch` on. */
  epoch(epoch: number, startBatch?: number): AsyncIterable<Batch>;
  /** Seconds the consumer has waited for data so far. */
  dataWaitSeconds(): number;
}

export interface TrainSettings {
  labels: string[];
  epochs: number;
  lr: number;
  weightDecay: number;
  /** Batches per optimizer step. */
  gradAccum: number;
  warmupSteps: number;
  cosine: boolean;
  minLr: number;
  /** Global gradient-norm clipping (0 or undefined: none). */
  clipNorm?: number;
  /** Epochs without a better validation AUC before stopping (0: never stop early). */
  patience: number;
  /** (N − P) / P per label, from the training split. */
  posWeight: number[];
  /** Also checkpoint inside an epoch, at optimizer-step boundaries, this often (seconds; 0: only per epoch). */
  checkpointSeconds?: number;
  /** ... or every this many optimizer steps (0: off). */
  checkpointSteps?: number;
}

export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  valLoss: number;
  valAuc: number;
  valAucs: Record<string, number | null>;
  lr: number;
  steps: number;
  imagesPerSecond: number;
  dataWaitSeconds: number;
  seconds: number;
  best: boolean;
}

/** What a checkpoint must hold to continue a run exactly. */
export interface TrainState {
  /** Epochs completed. */
  epoch: number;
  /** Optimizer steps taken. */
  step: number;
  bestAuc: number;
  bestEpoch: number;
  /** Epochs since the best. */
  stale: number;
  history: EpochRecord[];
  /** Inside epoch `epoch + 1`: batches done, their summed loss and images, and seconds spent (0 at an epoch boundary). */
  batch?: number;
  partialLoss?: number;
  partialImages?: number;
  partialSeconds?: number;
}

export interface TrainHooks {
  onStep?(info: { epoch: number; batch: number; batches: number; loss: number | null; images: number; seconds: number }): void;
  onEpoch?(record: EpochRecord): void;
  /**
   * Called after every epoch with the state to persist (and whether this epoch is the best so far), and
   * inside epochs (`midEpoch`) at the checkpoint cadence.
   */
  saveCheckpoint(state: TrainState, optimizer: AdamW, best: boolean, midEpoch?: boolean): Promise<void>;
}

export function initialState(): TrainState {
  return { epoch: 0, step: 0, bestAuc: -Infinity, bestEpoch: 0, stale: 0, history: [] };
}

export class Trainer {
  readonly optimizer: AdamW;
  private readonly posWeight: Tensor;

  constructor(readonly device: Device, readonly model: VisionTransformer, readonly settings: TrainSettings) {
    if (model.config.labels !== settings.labels.length) {
      throw new VitgpuError(`model has ${model.config.labels} outputs for ${settings.labels.length} labels`);
    }
    this.optimizer = new AdamW(model.parameters(), { lr: settings.lr, weightDecay: settings.weightDecay });
    this.posWeight = keep(device.tensor(settings.posWeight));
  }

  /** Loss of one batch with the paper's weighting; ignored labels (NaN) are masked out of the mean. */
  private batchLoss(batch: Batch, logits: Tensor): Tensor {
    const l = this.settings.labels.length;
    const targets = new Float32Array(batch.labels.length);
    const weight = new Float32Array(batch.labels.length);
    let counted = 0;
    for (let i = 0; i < targets.length; i++) {
      const v = batch.labels[i];
      if (Number.isNaN(v)) continue;
      targets[i] = v;
      weight[i] = 1;
      counted++;
    }
    return bceWithLogits(logits, this.device.tensor(targets, [batch.size, l]), {
      posWeight: this.posWeight,
      weight: counted === targets.length ? undefined : this.device.tensor(weight, [batch.size, l]),
      normalizer: Math.max(1, counted),
    });
  }

  private images(batch: Batch): Tensor {
    const s = this.model.config.imageSize;
    return this.device.tensor(batch.images, [batch.size, 3, s, s]);
  }

  /** Runs epochs from `state.epoch` to settings.epochs (or early stop); returns the final state. */
  async run(train: BatchSource, valid: BatchSource, state: TrainState, hooks: TrainHooks): Promise<TrainState> {
    const s = this.settings;
    const stepsPerEpoch = Math.ceil(train.batchesPerEpoch / s.gradAccum);
    const schedule = { lr: s.lr, warmupSteps: s.warmupSteps, cosine: s.cosine, minLr: s.minLr, totalSteps: stepsPerEpoch * s.epochs };
    this.optimizer.stepCount = state.step;
    let lastSave = performance.now();
    let stepsSinceSave = 0;
    for (let epoch = state.epoch + 1; epoch <= s.epochs; epoch++) {
      // A run resumed inside this epoch continues at the batch after its checkpoint.
      const startBatch = epoch === state.epoch + 1 ? (state.batch ?? 0) : 0;
      const priorSeconds = startBatch ? (state.partialSeconds ?? 0) : 0;
      const started = performance.now() - priorSeconds * 1000;
      const waitBefore = train.dataWaitSeconds();
      let lossSum: Tensor = keep(startBatch ? this.device.tensor(state.partialLoss ?? 0) : this.device.zeros([]));
      let batches = startBatch;
      let images = startBatch ? (state.partialImages ?? 0) : 0;
      let pending = 0;
      let shownLoss: number | null = null;
      let lastShown = 0;
      for await (const batch of train.epoch(epoch, startBatch)) {
        tidy(() => {
          const logits = this.model.forward(this.images(batch)).logits!;
          const loss = this.batchLoss(batch, logits);
          // Each batch contributes 1/gradAccum of a step's gradient.
          (s.gradAccum > 1 ? loss.mul(1 / s.gradAccum) : loss).backward();
          const next = keep(lossSum.add(loss.detach()));
          lossSum.dispose();
          lossSum = next;
        });
        batches++;
        images += batch.size;
        pending++;
        if (pending === s.gradAccum || batches === train.batchesPerEpoch) {
          this.step(schedule);
          pending = 0;
          stepsSinceSave++;
          const due = (s.checkpointSteps && stepsSinceSave >= s.checkpointSteps) ||
            (s.checkpointSeconds && performance.now() - lastSave >= s.checkpointSeconds * 1000);
          if (due && batches < train.batchesPerEpoch) {
            const partial: TrainState = {
              ...state,
              step: this.optimizer.stepCount,
              batch: batches,
              partialLoss: await lossSum.item(),
              partialImages: images,
              partialSeconds: (performance.now() - started) / 1000,
            };
            await hooks.saveCheckpoint(partial, this.optimizer, false, true);
            lastSave = performance.now();
            stepsSinceSave = 0;
          }
        }
        const now = performance.now();
        if (hooks.onStep) {
          // Reading the loss waits for the GPU: only a few times a second, for the progress bar.
          if (now - lastShown > 1000 || batches === train.batchesPerEpoch) {
            shownLoss = (await lossSum.item()) / batches;
            lastShown = performance.now();
          }
          hooks.onStep({ epoch, batch: batches, batches: train.batchesPerEpoch, loss: shownLoss, images, seconds: (now - started) / 1000 });
        }
      }
      if (pending > 0) this.step(schedule);
      const trainLoss = (await lossSum.item()) / Math.max(1, batches);
      lossSum.dispose();
      const trainSeconds = (performance.now() - started) / 1000;
      lastSave = performance.now();
      stepsSinceSave = 0;
      const { loss: valLoss, aucs } = await this.validate(valid);
      const ok = Object.values(aucs).filter((v): v is number => v !== null);
      const valAuc = ok.length ? ok.reduce((a, b) => a + b, 0) / ok.length : NaN;
      const best = valAuc > state.bestAuc;
      state = {
        epoch,
        step: this.optimizer.stepCount,
        bestAuc: best ? valAuc : state.bestAuc,
        bestEpoch: best ? epoch : state.bestEpoch,
        stale: best ? 0 : state.stale + 1,
        history: [...state.history],
      };
      const record: EpochRecord = {
        epoch,
        trainLoss,
        valLoss,
        valAuc,
        valAucs: aucs,
        lr: learningRate(Math.max(1, this.optimizer.stepCount), schedule),
        steps: this.optimizer.stepCount,
        imagesPerSecond: images / trainSeconds,
        dataWaitSeconds: train.dataWaitSeconds() - waitBefore,
        seconds: (performance.now() - started) / 1000,
        best,
      };
      state.history.push(record);
      hooks.onEpoch?.(record);
      await hooks.saveCheckpoint(state, this.optimizer, best);
      if (s.patience > 0 && state.stale >= s.patience) break;
    }
    return state;
  }

  private step(schedule: Parameters<typeof learningRate>[1]): void {
    const lr = learningRate(this.optimizer.stepCount + 1, schedule);
    if (this.settings.clipNorm && this.settings.clipNorm > 0) {
      const { norm, scale } = gradNormScale(this.model.parameters(), this.settings.clipNorm);
      this.optimizer.step({ gradScale: scale, lr });
      norm.dispose();
      scale.dispose();
    } else {
      this.optimizer.step({ lr });
    }
    this.optimizer.zeroGrad();
  }

  /** Mean BCE (same weighting as training) and per-label AUC on a split. */
  async validate(source: BatchSource): Promise<{ loss: number; aucs: Record<string, number | null>; probs: Float32Array; truth: Float32Array }> {
    const { probs, truth, loss } = await this.predict(source, true);
    const l = this.settings.labels.length;
    const n = probs.length / l;
    const aucs: Record<string, number | null> = {};
    this.settings.labels.forEach((name, j) => {
      const y: number[] = [];
      const p: number[] = [];
      for (let i = 0; i < n; i++) {
        const t = truth[i * l + j];
        if (Number.isNaN(t)) continue;
        y.push(t);
        p.push(probs[i * l + j]);
      }
      const auc = rocAuc(y, p);
      aucs[name] = Number.isNaN(auc) ? null : auc;
    });
    return { loss, aucs, probs, truth };
  }

  /** Sigmoid probabilities [N, L] for every sample of a source (in its order), with the labels. */
  predict(source: BatchSource, withLoss = false): Promise<Predictions> {
    return predictSource(this.device, this.model, source, this.settings.labels.length, withLoss ? (b, logits) => this.batchLoss(b, logits) : undefined);
  }

  dispose(): void {
    this.optimizer.dispose();
    this.posWeight.dispose();
  }
}

export interface Predictions {
  /** [N, L] sigmoid probabilities. */
  probs: Float32Array;
  /** [N, L] labels (NaN where ignored). */
  truth: Float32Array;
  paths: string[];
  /** Mean loss per image when a loss was given, else NaN. */
  loss: number;
}

/** Runs the model without gradients over every batch of `source`, in order. */
export async function predictSource(
  device: Device, model: VisionTransformer, source: BatchSource, labels: number, lossOf?: (b: Batch, logits: Tensor) => Tensor,
): Promise<Predictions> {
  const probs = new Float32Array(source.samples * labels);
  const truth = new Float32Array(source.samples * labels);
  const paths: string[] = [];
  const s = model.config.imageSize;
  let offset = 0;
  let lossSum = 0;
  for await (const batch of source.epoch(0)) {
    const out = noGrad(() =>
      tidy(() => {
        const logits = model.forward(device.tensor(batch.images, [batch.size, 3, s, s])).logits!;
        return { p: logits.sigmoid(), loss: lossOf ? lossOf(batch, logits) : null };
      }),
    );
    probs.set(await out.p.data(), offset * labels);
    if (out.loss) lossSum += (await out.loss.item()) * batch.size;
    out.p.dispose();
    out.loss?.dispose();
    truth.set(batch.labels, offset * labels);
    paths.push(...batch.paths);
    offset += batch.size;
  }
  return { probs, truth, paths, loss: lossOf && offset ? lossSum / offset : NaN };
}
