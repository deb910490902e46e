// The fine-tuning loop: BCE-with-logits (per-label pos_weight, ignored labels masked), AdamW with
// optional warmup/cosine schedule, gradient accumulation and global-norm clipping, validation each
// epoch (loss and mean AUC), best-model selection on the validation split, early stopping. Browser-safe:
// data and checkpoint I/O are injected (runs/train-node.ts provides them in Node).

import type { Device } from '../engine/device.js';
import type { Tensor } from '../engine/tensor.js';
import { keep, tidy } from '../engine/scope.js';
import { bceWithLogits } from '../engine/ops/bce.js';
import { AdamW, gradNormScale } from '../engine/optim.js';
import { VitgpuError } from '../engine/errors.js';
import type { VisionTransformer } from '../models/vit.js';
import type { LoraAdapters } from '../models/lora.js';
import { deriveSeed } from '../datasets/augment.js';
import type { Batch, BatchSource } from '../datasets/batch.js';
import { batchLogits, predictBatches, type Predictions } from '../models/predict.js';
import { rocAuc } from '../eval/metrics.js';
import { youdenThresholds } from '../eval/thresholds.js';
import { learningRate } from './schedule.js';
import { checkpointSeconds, type TrainOptions } from './settings.js';
import { LossScaler, type LossScaleState } from './loss-scale.js';

export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  valLoss: number;
  valAuc: number;
  valAucs: Record<string, number | null>;
  /**
   * Youden's threshold per label on this epoch's validation predictions: the operating point a run
   * reports and the browser page applies. "NaN" where the split has one class of the label, "Infinity"
   * where no threshold beats chance (JSON holds no such numbers; Number() reads both back).
   */
  valThresholds?: Record<string, number | string>;
  lr: number;
  steps: number;
  imagesPerSecond: number;
  dataWaitSeconds: number;
  seconds: number;
  best: boolean;
  /** Mixed precision: the loss scale after this epoch and the steps skipped for overflow so far. */
  lossScale?: number;
  skippedSteps?: number;
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
  /** Mixed precision: the dynamic loss scale (train/loss-scale.ts). */
  lossScale?: LossScaleState;
}

export interface TrainHooks {
  onStep?(info: { epoch: number; batch: number; batches: number; loss: number | null; images: number; seconds: number; skipped?: number }): void;
  onEpoch?(record: EpochRecord): void;
  /**
   * Called after every epoch with the state to persist (and whether this epoch is the best so far), and
   * inside epochs (`midEpoch`) at the checkpoint cadence.
   */
  saveCheckpoint(state: TrainState, optimizer: AdamW, best: boolean, midEpoch?: boolean): Promise<void>;
}

/** Training produced a non-finite loss or gradient; nothing of that step was applied or saved. */
export class DivergenceError extends VitgpuError {
  constructor(
    readonly epoch: number, readonly step: number, readonly batch: number, readonly batches: number, what: string, readonly lr: number,
  ) {
    super(
      `training diverged at epoch ${epoch}, optimizer step ${step} (batch ${batch} of ${batches}): the ${what}. ` +
      `The usual cause is a learning rate too high for this model and data (--lr ${lr}): start again with a lower --lr, ` +
      'or add --warmup-steps or --clip-norm. The step was not applied, and nothing non-finite was saved',
    );
  }
}

export function initialState(): TrainState {
  return { epoch: 0, step: 0, bestAuc: -Infinity, bestEpoch: 0, stale: 0, history: [] };
}

/** Stream of the LoRA dropout masks: batch `index` of `epoch` draws from deriveSeed(seed, it, epoch, index). */
const DROPOUT_STREAM = 3;

export class Trainer {
  readonly optimizer: AdamW;
  /** The tensors the optimizer updates, by the names their moments are saved under (all others stay frozen). */
  readonly trainable: ReadonlyMap<string, Tensor>;
  private readonly lora: LoraAdapters | null;
  private readonly posWeight: Tensor;
  /** Mixed precision's dynamic loss scale (null in f32). */
  private scaler: LossScaler | null;

  /**
   * `labels` are the model's outputs in order; `posWeight` is (N − P) / P per label, from the training
   * split. `trainable` defaults to every parameter of the model (full fine-tuning); `lora` are adapters
   * attached to the model, whose dropout the trainer seeds per batch.
   */
  constructor(
    readonly device: Device, readonly model: VisionTransformer, readonly options: TrainOptions,
    readonly labels: readonly string[], posWeight: ArrayLike<number>,
    opts: { trainable?: ReadonlyMap<string, Tensor>; lora?: LoraAdapters | null } = {},
  ) {
    if (model.config.labels !== labels.length) {
      throw new VitgpuError(`model has ${model.config.labels} outputs for ${labels.length} labels`);
    }
    this.trainable = opts.trainable ?? model.params;
    this.lora = opts.lora ?? null;
    model.checkpointActivations = Boolean(options.checkpointActivations);
    model.precision = options.precision ?? 'f32';
    this.scaler = model.precision === 'mixed' ? new LossScaler(options.lossScale ? { init: options.lossScale } : {}) : null;
    this.optimizer = new AdamW([...this.trainable.values()], { lr: options.lr, weightDecay: options.weightDecay });
    this.posWeight = keep(device.tensor(Array.from(posWeight)));
  }

  /** Loss of one batch with the paper's weighting; ignored labels (NaN) are masked out of the mean. */
  private batchLoss(batch: Batch, logits: Tensor): Tensor {
    const l = this.labels.length;
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


  /** Runs epochs from `state.epoch` to options.epochs (or early stop); returns the final state. */
  async run(train: BatchSource, valid: BatchSource, state: TrainState, hooks: TrainHooks): Promise<TrainState> {
    const s = this.options;
    const everySeconds = checkpointSeconds(s);
    const stepsPerEpoch = Math.ceil(train.batchesPerEpoch / s.gradAccum);
    const schedule = { lr: s.lr, warmupSteps: s.warmupSteps, cosine: s.cosine, minLr: s.minLr, totalSteps: stepsPerEpoch * s.epochs };
    this.optimizer.stepCount = state.step;
    if (this.scaler && state.lossScale) this.scaler = new LossScaler(this.scaler.opts, state.lossScale);
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
        // LoRA dropout masks are drawn from (seed, epoch, batch): a resumed run draws the same ones.
        if (this.lora) this.lora.dropoutSeed = deriveSeed(s.seed, DROPOUT_STREAM, epoch, batch.index);
        try {
          tidy(() => {
            const loss = this.batchLoss(batch, batchLogits(this.model, batch));
            // Each batch contributes 1/gradAccum of a step's gradient; mixed precision scales the loss up
            // (the optimizer divides the scale out of the gradients again).
            const factor = (this.scaler?.scale ?? 1) / s.gradAccum;
            (factor !== 1 ? loss.mul(factor) : loss).backward();
            const next = keep(lossSum.add(loss.detach()));
            lossSum.dispose();
            lossSum = next;
          });
        } finally {
          if (this.lora) this.lora.dropoutSeed = null;
        }
        batches++;
        images += batch.size;
        pending++;
        if (pending === s.gradAccum || batches === train.batchesPerEpoch) {
          await this.step(schedule, { epoch, batch: batches, batches: train.batchesPerEpoch, lossSum });
          pending = 0;
          stepsSinceSave++;
          const due = (s.checkpointSteps && stepsSinceSave >= s.checkpointSteps) ||
            (everySeconds && performance.now() - lastSave >= everySeconds * 1000);
          if (due && batches < train.batchesPerEpoch) {
            const partial: TrainState = {
              ...state,
              step: this.optimizer.stepCount,
              batch: batches,
              partialLoss: await lossSum.item(),
              partialImages: images,
              partialSeconds: (performance.now() - started) / 1000,
              lossScale: this.scaler?.state(),
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
          hooks.onStep({ epoch, batch: batches, batches: train.batchesPerEpoch, loss: shownLoss, images, seconds: (now - started) / 1000, skipped: this.scaler?.skipped });
        }
      }
      if (pending > 0) await this.step(schedule, { epoch, batch: batches, batches: train.batchesPerEpoch, lossSum });
      const trainLoss = (await lossSum.item()) / Math.max(1, batches);
      lossSum.dispose();
      const trainSeconds = (performance.now() - started) / 1000;
      lastSave = performance.now();
      stepsSinceSave = 0;
      const { loss: valLoss, aucs, thresholds } = await this.validate(valid);
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
        lossScale: this.scaler?.state(),
      };
      const record: EpochRecord = {
        epoch,
        trainLoss,
        valLoss,
        valAuc,
        valAucs: aucs,
        valThresholds: thresholds,
        lr: learningRate(Math.max(1, this.optimizer.stepCount), schedule),
        steps: this.optimizer.stepCount,
        imagesPerSecond: images / trainSeconds,
        dataWaitSeconds: train.dataWaitSeconds() - waitBefore,
        seconds: (performance.now() - started) / 1000,
        best,
        ...(this.scaler ? { lossScale: this.scaler.scale, skippedSteps: this.scaler.skipped } : {}),
      };
      state.history.push(record);
      hooks.onEpoch?.(record);
      await hooks.saveCheckpoint(state, this.optimizer, best);
      if (s.patience > 0 && state.stale >= s.patience) break;
    }
    return state;
  }

  /**
   * One optimizer step, taken only when the loss so far and the gradients are finite: a diverging run
   * stops at the step where it diverges, before any non-finite value reaches the weights (so none can
   * reach a checkpoint either).
   */
  private async step(
    schedule: Parameters<typeof learningRate>[1], at: { epoch: number; batch: number; batches: number; lossSum: Tensor },
  ): Promise<void> {
    const lr = learningRate(this.optimizer.stepCount + 1, schedule);
    const clip = this.options.clipNorm;
    const { norm, scale } = gradNormScale([...this.trainable.values()], clip > 0 ? clip : 1);
    try {
      const [loss, gradNorm] = await Promise.all([at.lossSum.item(), norm.item()]);
      const diverged = (what: string) => new DivergenceError(at.epoch, this.optimizer.stepCount + 1, at.batch, at.batches, what, this.options.lr);
      if (!Number.isFinite(loss)) throw diverged(`loss is ${loss}`);
      if (this.scaler) {
        // Mixed precision: gradients that overflowed f16 skip the step and lower the scale.
        const lossScale = this.scaler.scale;
        if (!this.scaler.update(Number.isFinite(gradNorm))) {
          if (this.scaler.collapsed) throw diverged(`gradient norm is ${gradNorm} even with the loss scale down to ${lossScale} (mixed precision skipped ${this.scaler.skipped} steps for overflow)`);
          this.optimizer.zeroGrad();
          return;
        }
        // AdamW multiplies the gradients by this in f32: the loss scale divided out, and the clipping.
        const clipFactor = clip > 0 ? Math.min(1, clip / (gradNorm / lossScale + 1e-6)) : 1;
        const unscale = this.device.tensor([clipFactor / lossScale]);
        try {
          this.optimizer.step({ gradScale: unscale, lr });
        } finally {
          unscale.dispose();
        }
      } else {
        if (!Number.isFinite(gradNorm)) throw diverged(`gradient norm is ${gradNorm}`);
        this.optimizer.step(clip > 0 ? { gradScale: scale, lr } : { lr });
      }
    } finally {
      norm.dispose();
      scale.dispose();
    }
    this.optimizer.zeroGrad();
  }

  /** Mean BCE (same weighting as training) and per-label AUC on a split. */
  async validate(source: BatchSource): Promise<{
    loss: number; aucs: Record<string, number | null>; thresholds: Record<string, number | string>; probs: Float32Array; truth: Float32Array;
  }> {
    const { probs, truth, loss } = await this.predict(source, true);
    const l = this.labels.length;
    const n = probs.length / l;
    const aucs: Record<string, number | null> = {};
    this.labels.forEach((name, j) => {
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
    const rows = (a: Float32Array) => Array.from({ length: n }, (_, i) => Array.from(a.subarray(i * l, (i + 1) * l)));
    const youden = youdenThresholds(this.labels, rows(truth), rows(probs));
    const thresholds = Object.fromEntries(this.labels.map((name, j) => [name, Number.isFinite(youden[j]) ? youden[j] : String(youden[j])]));
    return { loss, aucs, thresholds, probs, truth };
  }

  /** Sigmoid probabilities [N, L] for every sample of a source (in its order), with the labels. */
  predict(source: BatchSource, withLoss = false): Promise<Predictions> {
    return predictBatches(this.model, source, withLoss ? (b, logits) => this.batchLoss(b, logits) : undefined);
  }

  dispose(): void {
    this.optimizer.dispose();
    this.posWeight.dispose();
  }
}
