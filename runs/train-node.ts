// Training a run (Node): checks the model settings before anything is created, takes the run's lock,
// builds the model from its initialization, trains with checkpoints every epoch (and inside epochs at
// the run's cadence) and resumes killed runs exactly. The files are described in run-dir-node.ts.

import { appendFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Device } from '../engine/device.js';
import { VitgpuError } from '../engine/errors.js';
import { openFileSource, writeFileAtomic } from '../engine/node.js';
import { planCheckpoint } from '../models/checkpoint.js';
import { loadVit } from '../models/load.js';
import { readCheckpointHeader } from '../models/checkpoint-file.js';
import { VisionTransformer, presetConfig, validateConfig, PRESETS, type VitConfig } from '../models/vit.js';
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

/** The checkpoint file an --init names: a file, or a run directory's best.safetensors. */
async function initFile(init: string): Promise<string> {
  const st = await stat(init).catch(() => null);
  if (!st) throw new VitgpuError(`--init ${init}: no such file or run directory`);
  return st.isDirectory() ? join(init, 'best.safetensors') : init;
}

/**
 * Checks the architecture and image size before any image is read or any folder is made: the preset
 * exists, or the checkpoint can be read and matches --arch, and the image size is a multiple of the
 * patch size.
 */
export async function checkModelOptions(m: ModelOptions): Promise<void> {
  let config: VitConfig;
  if (m.init === 'random') {
    config = presetConfig(m.arch, { imageSize: m.imageSize, ...(m.heads ? { heads: m.heads } : {}) });
  } else {
    const file = await initFile(m.init);
    const src = await openFileSource(file);
    try {
      const header = await readCheckpointHeader(src);
      const plan = planCheckpoint(new Map([...header.tensors.values()].map((t) => [t.name, t.shape] as const)), header.metadata, { imageSize: m.imageSize, source: file });
      config = { ...plan.config, imageSize: m.imageSize, ...(m.heads ? { heads: m.heads } : {}) };
      if (m.arch !== 'auto' && !PRESETS[m.arch]) presetConfig(m.arch); // throws, naming the known ones
    } finally {
      await src.close();
    }
  }
  try {
    validateConfig(config);
  } catch (err) {
    throw new VitgpuError(`--image-size ${m.imageSize} with ${m.init === 'random' ? `--arch ${m.arch}` : m.init}: ${(err as Error).message.replace(/^ViT config "[^"]*": /, '')}`);
  }
}

/** The model a run starts from. */
export async function initModel(device: Device, m: ModelOptions, labels: number, seed: number, reporter: Reporter): Promise<VisionTransformer> {
  if (m.init === 'random') {
    reporter.info(`initialization: random (${m.arch})`);
    return new VisionTransformer(device, presetConfig(m.arch, { labels, imageSize: m.imageSize, ...(m.heads ? { heads: m.heads } : {}) }), { seed });
  }
  const file = await initFile(m.init);
  const src = await openFileSource(file);
  try {
    const { model, report } = await loadVit(device, src, { arch: m.arch, imageSize: m.imageSize, labels, seed, heads: m.heads });
    reporter.info(`initialization: ${file} (${report.format} naming, ${report.config.name}${report.newHead ? `; new head: ${report.newHead}` : ''})`);
    if (report.unexpected.length) reporter.info(`  not used: ${report.unexpected.slice(0, 6).join(', ')}${report.unexpected.length > 6 ? ', …' : ''}`);
    return model;
  } finally {
    await src.close();
  }
}

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
      resumed = await loadTrainCheckpoint(device, files.last);
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
      const trainer = new Trainer(device, model, t, labels, positiveWeights(ok, labels));
      if (resumed) trainer.optimizer.loadMoments(resumed.moments, resumed.optimizerStep);
      const trainLoader = splitLoader(train, config.data, listed!.imageRoot, config.model.imageSize, t.batchSize, pool, t);
      const validLoader = splitLoader(valid, config.data, listed!.imageRoot, config.model.imageSize, t.batchSize, pool, null);
      const state = resumed?.state ?? initialState();
      if (resumed) {
        // The log may hold an epoch the checkpoint does not (killed between the two): rewrite it from the checkpoint.
        await writeFileAtomic(files.log, state.history.map((r) => `${JSON.stringify(r)}\n`).join(''));
      }
      let saved = resumed ? `epoch ${state.epoch}${state.batch ? `, batch ${state.batch} of epoch ${state.epoch + 1}` : ''}` : null;
      try {
        const final = await trainer.run(trainLoader, validLoader, state, {
          onStep: (info) => reporter.step?.(info),
          onEpoch: (record) => reporter.epochEnd?.(record),
          saveCheckpoint: async (st, optimizer, best, midEpoch) => {
            if (midEpoch) {
              await saveTrainCheckpoint(files.last, model, optimizer, { state: st, run: config, labels });
              saved = `epoch ${st.epoch}, batch ${st.batch} of epoch ${st.epoch + 1}`;
              return;
            }
            // Best first, then last, then the log line: whatever a kill interrupts, the last checkpoint
            // never claims an epoch whose best weights are missing, and resume rewrites the log from it.
            const record = st.history[st.history.length - 1];
            const thresholds = record.valThresholds ? { values: record.valThresholds, epoch: record.epoch } : undefined;
            if (best) await saveTrainCheckpoint(files.best, model, null, { labels, run: config, thresholds });
            await saveTrainCheckpoint(files.last, model, optimizer, { state: st, run: config, labels });
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
