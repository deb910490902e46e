// Training a run (Node): checks the model settings before anything is created, takes the run's lock,
// builds the model from its initialization, trains with checkpoints every epoch (and inside epochs at
// the run's cadence) and resumes killed runs exactly. The files are described in run-dir-node.ts.

import { appendFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Device } from '../engine/device.js';
import { VitgpuError } from '../engine/errors.js';
import { openFileSource, writeFileAtomic } from '../engine/node.js';
import type { Tensor } from '../engine/tensor.js';
import { LoraAdapters, freezeBackbone } from '../models/lora.js';
import { loraTrainable } from '../models/lora-file.js';
import type { VisionTransformer } from '../models/vit.js';
import { positiveWeights, splitSamples, type Sample } from '../datasets/dataset.js';
import { ImagePool } from '../datasets/image-pool-node.js';
import { describeTooFew, withTrainSubset } from '../datasets/subset.js';
import { DivergenceError, initialState, Trainer, type TrainState } from '../train/trainer.js';
import { loadTrainCheckpoint, saveTrainCheckpoint, type LoadedCheckpoint } from '../train/checkpoint-node.js';
import type { ModelOptions, Reporter, RunConfig } from './config.js';
import { anchorData, checkImages, locateData, readList, splitDigest, splitLoader, type ListedData } from './data-node.js';
import { lockRun, removeStaleTemps } from './lock-node.js';
import { reconcileResume } from './resume.js';
import { runFiles } from './run-dir-node.js';
import { featureSource, featureSources, featuresDir } from './features-node.js';
import type { BatchSource } from '../datasets/batch.js';
import { baseReference, checkModelOptions, initModel, openLoraCheckpoint, type BaseReference } from './model-file-node.js';

export { checkModelOptions, initModel };

export interface ResumeRequest {
  /** The settings the options give, as a new run would take them. */
  requested: RunConfig;
  /** The options the user typed (`--lr`, `--no-augment`, ...). */
  given: string[];
  /** --data / --image-root: where a moved dataset is now. */
  relocate: { data?: string; imageRoot?: string };
  /** Accept a training split that changed since the run started. */
  force: boolean;
}

export interface TrainRunOptions {
  reporter: Reporter;
  /** Continue the run in the directory instead of starting one. */
  resume?: ResumeRequest;
}

export interface TrainRunResult {
  state: TrainState;
  /** The settings the run trained with (a resume's, after the changes it may make). */
  config: RunConfig;
  /** The run had already ended; nothing was trained. */
  alreadyDone: boolean;
}

/** Says once, at the start, which labels the validation split cannot score (one class only). */
function noteSingleClassLabels(valid: readonly Sample[], labels: readonly string[], reporter: Reporter): void {
  const notes: string[] = [];
  labels.forEach((name, j) => {
    let pos = 0;
    let neg = 0;
    for (const s of valid) {
      const v = s.labels[j];
      if (v === 1) pos++;
      else if (v === 0) neg++;
    }
    if (pos === 0 || neg === 0) notes.push(`${name} (${pos === 0 ? 'no positives' : 'no negatives'})`);
  });
  if (notes.length) {
    reporter.info(`note: the validation split has one class only for ${notes.join(', ')}: ${notes.length === 1 ? 'this label is' : 'these labels are'} left out of the mean validation AUC that picks the best epoch`);
  }
}

/** Why a run has nothing left to train, or null. */
function finished(state: TrainState | null, config: RunConfig): string | null {
  if (!state) return null;
  const t = config.train;
  if (state.batch) return null;
  if (state.epoch >= t.epochs) return `it has trained all ${t.epochs} epochs (pass --epochs N to train longer)`;
  if (t.patience > 0 && state.stale >= t.patience) {
    return `it stopped early after epoch ${state.epoch}: no better validation AUC in ${t.patience} epochs (pass a larger --patience to continue)`;
  }
  return null;
}

/**
 * What a run trains: every parameter (full fine-tuning), the head only (--freeze-backbone), or LoRA
 * adapters and the head on a frozen backbone, with the base reference its checkpoints store.
 */
async function trainableParts(model: VisionTransformer, resumed: LoadedCheckpoint | null, config: RunConfig): Promise<{
  trainable: ReadonlyMap<string, Tensor>; lora: LoraAdapters | null; base: BaseReference | null;
}> {
  const t = config.train;
  if (t.lora) {
    let lora = resumed?.lora ?? null;
    if (!lora) {
      freezeBackbone(model);
      lora = new LoraAdapters(model.device, model.config, t.lora, t.seed);
      model.adapters = lora;
    }
    const base = (resumed?.loraBase as BaseReference | undefined) ?? (await baseReference(config.model, t.seed));
    return { trainable: loraTrainable(model, lora), lora, base };
  }
  if (t.freezeBackbone) {
    freezeBackbone(model);
    return { trainable: new Map(['head.weight', 'head.bias'].map((n) => [n, model.param(n)])), lora: null, base: null };
  }
  return { trainable: model.params, lora: null, base: null };
}

function reportTrainable(model: VisionTransformer, lora: LoraAdapters | null, trainable: ReadonlyMap<string, Tensor>, reporter: Reporter): void {
  const count = (ts: Iterable<Tensor>) => [...ts].reduce((n, x) => n + x.size, 0);
  const n = count(trainable.values());
  const total = count(model.params.values()) + (lora ? lora.size : 0);
  const what = lora ? `LoRA rank ${lora.settings.rank} on ${lora.settings.targets} (${lora.size.toLocaleString('en-US')} adapter values) and the head` : n === total ? 'all' : 'the head only';
  reporter.info(`trainable parameters: ${n.toLocaleString('en-US')} of ${total.toLocaleString('en-US')} (${((100 * n) / total).toFixed(2)}%; ${what})`);
}

/** Trains (or resumes) the run in `runDir`. */
export async function trainRun(device: Device, runDir: string, newConfig: RunConfig | null, opts: TrainRunOptions): Promise<TrainRunResult> {
  const { reporter } = opts;
  const files = runFiles(runDir);
  let listed: ListedData | null = null;
  if (!opts.resume) {
    if (!newConfig) throw new VitgpuError('no run settings');
    // Everything that can be checked without the images, before the run folder exists.
    await checkModelOptions(newConfig.model);
    newConfig = { ...newConfig, data: anchorData(newConfig.data, runDir) };
    listed = await readList(newConfig.data, reporter);
  }
  const lock = await lockRun(runDir, reporter.info);
  try {
    const temps = await removeStaleTemps(runDir);
    if (temps.files.length) {
      reporter.info(`removed ${temps.files.length} temporary file(s) (${(temps.bytes / 2 ** 20).toFixed(1)} MiB) left by an interrupted write: ${temps.files.join(', ')}`);
    }
    const hasLast = await stat(files.last).then(() => true, () => false);
    let resumed: LoadedCheckpoint | null = null;
    let config: RunConfig;
    if (opts.resume) {
      if (!hasLast) throw new VitgpuError(`--resume: ${runDir} has no checkpoint (${files.last})`);
      resumed = await loadTrainCheckpoint(device, files.last, (src, header) => openLoraCheckpoint(device, src, header));
      const stored = resumed.run as RunConfig | null;
      if (!stored?.data || !stored.model || !stored.train) throw new VitgpuError(`${files.last}: the checkpoint has no run settings to resume with`);
      const { config: merged, changed } = reconcileResume(stored, opts.resume.requested, opts.resume.given, files.last);
      if (changed.length) reporter.info(`changed on resume: ${changed.join(', ')}`);
      merged.data = await locateData(merged.data, runDir, opts.resume.relocate);
      if (opts.resume.relocate.data || opts.resume.relocate.imageRoot) merged.data = anchorData(merged.data, runDir);
      config = merged;
      const st = resumed.state;
      reporter.info(`resuming ${runDir} after epoch ${st?.epoch ?? 0}${st?.batch ? `, batch ${st.batch} of epoch ${st.epoch + 1}` : ''}`);
      listed = await readList(config.data, reporter);
    } else {
      if (hasLast) throw new VitgpuError(`${runDir} already holds a run (${files.last}); pass --resume to continue it, or choose another --out`);
      config = newConfig!;
    }
    const list = listed!.list;
    const labels = list.labelNames;
    const trainRows = splitSamples(list.samples, 'train');
    const digest = { images: trainRows.length, digest: splitDigest(trainRows) };
    if (resumed && config.trainSplit && config.trainSplit.digest !== digest.digest) {
      const what = `the training split of ${config.data.data} changed since the run started (${config.trainSplit.images} images then, ${digest.images} now, or other labels)`;
      if (!opts.resume!.force) throw new VitgpuError(`${what}; a resumed run would learn from other data. Pass --force to continue on the new split anyway, or start a new run`);
      reporter.info(`warning: ${what}; continuing on the new split (--force)`);
    }
    config.trainSplit = digest;
    if (resumed && resumed.labels.join() !== labels.join()) {
      throw new VitgpuError(`${files.last} was trained on labels ${resumed.labels.join(', ')}, but the master list now gives ${labels.join(', ')}`);
    }
    const t = config.train;
    const done = finished(resumed?.state ?? null, config);
    if (done && resumed?.state) {
      reporter.info(`${runDir}: nothing to do, ${done}`);
      return { state: resumed.state, config, alreadyDone: true };
    }

    const pool = new ImagePool({ workers: config.data.workers });
    try {
      const checked = await checkImages(list.samples, listed!, config.data, config.model.imageSize, reporter, pool);
      const { bad } = checked;
      let ok = checked.ok;
      if (t.trainFraction !== undefined && t.trainFraction < 1) {
        // Before pos_weight: the loss weighs the labels as the subset, not the full split, has them.
        const subsetSeed = t.subsetSeed ?? t.seed;
        const full = splitSamples(ok, 'train').length;
        const { samples, subset } = withTrainSubset(ok, labels, { fraction: t.trainFraction, seed: subsetSeed, minPositives: t.minPositives });
        ok = samples;
        reporter.info(`training subset: ${subset.samples.length} of ${full} training rows (fraction ${t.trainFraction}, subset seed ${subsetSeed}` +
          `${subset.added ? `; ${subset.added} added so that every label keeps positives` : ''})`);
        if (subset.tooFew.length) reporter.info(`warning: too few positives in the training subset: ${describeTooFew(subset.tooFew)}`);
        const record = { fraction: t.trainFraction, seed: subsetSeed, images: subset.samples.length, of: full, target: subset.target, added: subset.added, positives: subset.counts, tooFew: subset.tooFew.map((c) => c.label) };
        if (!resumed) await writeFileAtomic(join(runDir, 'subset.json'), `${JSON.stringify(record, null, 2)}\n`);
      }
      const train = splitSamples(ok, 'train');
      const valid = splitSamples(ok, 'valid');
      reporter.info(`splits: ${train.length} train, ${valid.length} valid, ${splitSamples(ok, 'test').length} test (test is not used in training)`);
      noteSingleClassLabels(valid, labels, reporter);
      await writeFileAtomic(files.config, `${JSON.stringify({ ...config, labels }, null, 2)}\n`);

      const model = resumed ? resumed.model : await initModel(device, config.model, labels.length, t.seed, reporter);
      const { trainable, lora, base } = await trainableParts(model, resumed, config);
      reportTrainable(model, lora, trainable, reporter);
      const trainer = new Trainer(device, model, t, labels, positiveWeights(ok, labels), { trainable, lora });
      if (resumed) trainer.optimizer.loadMoments([...trainable.keys()].map((n) => resumed!.moments.get(n) ?? null), resumed.optimizerStep);
      const loraSave = lora ? { adapters: lora, base: base as unknown as Record<string, unknown> } : undefined;
      const trainLoader = splitLoader(train, config.data, listed!.imageRoot, config.model.imageSize, t.batchSize, pool, t);
      const validLoader = splitLoader(valid, config.data, listed!.imageRoot, config.model.imageSize, t.batchSize, pool, null);
      let sources: { train: BatchSource; valid: BatchSource } = { train: trainLoader, valid: validLoader };
      const cached = t.freezeBackbone ? featuresDir(t.features, runDir) : null;
      if (cached) {
        // A linear probe: the frozen backbone's embeddings, extracted once (or made by `vitgpu features`).
        const key = { source: featureSource(await baseReference(config.model, t.seed)), imageSize: config.model.imageSize, normalize: config.data.normalize, filter: config.data.filter };
        sources = await featureSources(model, { train, valid }, {
          dir: cached, auto: !t.features || t.features === 'auto', key, labels, data: config.data, imageRoot: listed!.imageRoot, train: t, pool, info: reporter.info,
        });
      }
      const state = resumed?.state ?? initialState();
      if (resumed) {
        // The log may hold an epoch the checkpoint does not (killed between the two): rewrite it from the checkpoint.
        await writeFileAtomic(files.log, state.history.map((r) => `${JSON.stringify(r)}\n`).join(''));
      }
      let saved = resumed ? `epoch ${state.epoch}${state.batch ? `, batch ${state.batch} of epoch ${state.epoch + 1}` : ''}` : null;
      try {
        const final = await trainer.run(sources.train, sources.valid, state, {
          onStep: (info) => reporter.step?.(info),
          onEpoch: (record) => reporter.epochEnd?.(record),
          saveCheckpoint: async (st, optimizer, best, midEpoch) => {
            if (midEpoch) {
              await saveTrainCheckpoint(files.last, model, optimizer, { state: st, run: config, labels, trainable, lora: loraSave });
              saved = `epoch ${st.epoch}, batch ${st.batch} of epoch ${st.epoch + 1}`;
              return;
            }
            // Best first, then last, then the log line: whatever a kill interrupts, the last checkpoint
            // never claims an epoch whose best weights are missing, and resume rewrites the log from it.
            const record = st.history[st.history.length - 1];
            const thresholds = record.valThresholds ? { values: record.valThresholds, epoch: record.epoch } : undefined;
            if (best) await saveTrainCheckpoint(files.best, model, null, { labels, run: config, thresholds, lora: loraSave });
            await saveTrainCheckpoint(files.last, model, optimizer, { state: st, run: config, labels, trainable, lora: loraSave });
            saved = `epoch ${st.epoch}`;
            await appendFile(files.log, `${JSON.stringify(st.history[st.history.length - 1])}\n`);
          },
        });
        const summary = {
          runDir,
          epochs: final.epoch,
          stoppedEarly: final.epoch < t.epochs,
          bestEpoch: final.bestEpoch,
          bestValAuc: final.bestAuc,
          labels,
          badImages: bad.length,
          history: final.history,
        };
        await writeFileAtomic(files.summary, `${JSON.stringify(summary, null, 2)}\n`);
        return { state: final, config, alreadyDone: false };
      } catch (err) {
        if (err instanceof DivergenceError) {
          throw new VitgpuError(`${err.message}. ${saved ? `The last checkpoint (${files.last}, ${saved}) is intact and resumable.` : 'No checkpoint had been written yet.'}`);
        }
        throw err;
      } finally {
        trainer.dispose();
        lora?.dispose();
        model.dispose();
        await trainLoader.close();
        await validLoader.close();
      }
    } finally {
      await pool.close();
    }
  } finally {
    await lock.release();
  }
}
