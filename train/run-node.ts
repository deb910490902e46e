// A training run on disk (Node): reads the master list, checks every image before training, builds the
// model from its initialization, trains with checkpoints each epoch and resumes killed runs.
//
//   RUN_DIR/config.json                 the run's settings (data, model, training)
//   RUN_DIR/log.jsonl                   one JSON line per epoch
//   RUN_DIR/best.safetensors            the weights with the best validation AUC (vitgpu format)
//   RUN_DIR/last/checkpoint.safetensors weights + optimizer moments + loop state, every epoch
//   RUN_DIR/summary.json                written when the run ends

import { appendFile, mkdir, readFile, stat, writeFile, rename } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Device } from '../engine/device.js';
import { VitgpuError } from '../engine/errors.js';
import { loadVit } from '../models/load.js';
import { openFileSource } from '../engine/node.js';
import { VisionTransformer, presetConfig } from '../models/vit.js';
import { loadMasterList, positiveWeights, splitSamples, type MasterList, type Sample } from '../datasets/dataset.js';
import { getPreset, presetOptions } from '../datasets/presets.js';
import { BatchLoader, ImagePool, preflight, type BadImage } from '../datasets/loader-node.js';
import type { Normalize, ResizeFilter } from '../datasets/image.js';
import type { RotateInterpolation } from '../datasets/augment.js';
import type { Split } from '../datasets/dataset.js';
import { initialState, Trainer, type Batch, type BatchSource, type EpochRecord, type TrainSettings, type TrainState } from './trainer.js';
import { loadTrainCheckpoint, saveTrainCheckpoint } from './checkpoint-node.js';
import { describeTooFew, withTrainSubset } from '../datasets/subset.js';

export interface DataOptions {
  /** Master-list CSV. */
  data: string;
  /** Folder the image paths are relative to (default: the CSV's folder). */
  imageRoot?: string;
  preset?: string;
  labels?: string[];
  pathColumn?: string;
  /** Appended to every image path (for lists that hold ids, e.g. '.png'). */
  pathSuffix?: string;
  splitColumn?: string;
  uncertain?: 'negative' | 'positive' | 'ignore';
  /** Keep all views even where the preset filters them. */
  allViews?: boolean;
  skipBadImages?: boolean;
  /** Resized-image cache folder; null for none (default <image-root>/.vitgpu-cache). */
  cacheDir?: string | null;
  workers?: number;
  filter: ResizeFilter;
  normalize: Normalize;
}

export interface ModelOptions {
  arch: string;
  /** 'random', a safetensors checkpoint, or a previous vitgpu run directory. */
  init: string;
  imageSize: number;
  heads?: number;
}

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  gradAccum: number;
  warmupSteps: number;
  cosine: boolean;
  minLr: number;
  clipNorm: number;
  patience: number;
  seed: number;
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
}

export interface RunConfig {
  data: DataOptions;
  model: ModelOptions;
  train: TrainOptions;
}

export interface Reporter {
  info(message: string): void;
  step?(info: { epoch: number; batch: number; batches: number; loss: number | null; images: number; seconds: number }): void;
  epochEnd?(record: EpochRecord): void;
  preflightProgress?(done: number, total: number): void;
}

export interface OpenedData {
  list: MasterList;
  samples: Sample[];
  bad: BadImage[];
  imageRoot: string;
}

/** Reads the master list and checks (and caches) every image it names before any training. */
export async function openData(opts: DataOptions, imageSize: number, reporter: Reporter, requireSplits?: Split[], pool?: ImagePool): Promise<OpenedData> {
  const csvText = await readFile(opts.data, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new VitgpuError(`${opts.data}: cannot read the master list (${err.code ?? err.message})`);
  });
  const preset = getPreset(opts.preset ?? 'generic');
  const list = loadMasterList(
    csvText,
    opts.data,
    presetOptions(preset, {
      labels: opts.labels,
      pathColumn: opts.pathColumn,
      pathSuffix: opts.pathSuffix,
      splitColumn: opts.splitColumn,
      uncertain: opts.uncertain,
      ...(opts.allViews ? { viewColumn: null, views: null } : {}),
      requireSplits,
    }),
  );
  const imageRoot = resolve(opts.imageRoot ?? dirname(opts.data));
  reporter.info(`${opts.data}: ${list.samples.length} images, ${list.labelNames.length} labels (${list.labelNames.join(', ')})` +
    (list.droppedByView ? `, ${list.droppedByView} rows left out by the view filter` : ''));
  const { ok, bad } = await preflight(list.samples, imageRoot, {
    skipBadImages: opts.skipBadImages,
    listFile: opts.data,
    cache: opts.cacheDir === null ? undefined : { dir: opts.cacheDir, size: imageSize, filter: opts.filter },
    workers: opts.workers,
    pool,
    onProgress: reporter.preflightProgress,
  });
  if (bad.length) reporter.info(`skipped ${bad.length} bad image(s) (--skip-bad-images), e.g. ${bad[0].path}: ${bad[0].reason}`);
  return { list, samples: ok, bad, imageRoot };
}

/** A BatchLoader seen through the trainer's BatchSource interface. */
export function batchSource(loader: BatchLoader, samples: number): BatchSource {
  return {
    batchesPerEpoch: loader.batchesPerEpoch,
    samples,
    epoch: (e: number, startBatch = 0) => loader.epoch(e, startBatch) as AsyncIterable<Batch>,
    dataWaitSeconds: () => loader.dataWaitSeconds,
  };
}

export function makeLoader(
  samples: Sample[], data: DataOptions, imageRoot: string, imageSize: number, batchSize: number,
  pool: ImagePool, training: TrainOptions | null,
): BatchLoader {
  return new BatchLoader(samples, {
    imageRoot,
    batchSize,
    imageSize,
    filter: data.filter,
    normalize: data.normalize,
    augment: training?.augment ?? false,
    interpolation: training?.rotation,
    shuffle: training !== null,
    seed: training?.seed ?? 0,
    cacheDir: data.cacheDir,
    pool,
  });
}

/** The model a run starts from. */
export async function initModel(device: Device, m: ModelOptions, labels: number, seed: number, reporter: Reporter): Promise<VisionTransformer> {
  if (m.init === 'random') {
    reporter.info(`initialization: random (${m.arch})`);
    return new VisionTransformer(device, presetConfig(m.arch, { labels, imageSize: m.imageSize, ...(m.heads ? { heads: m.heads } : {}) }), { seed });
  }
  let file = m.init;
  const st = await stat(file).catch(() => null);
  if (!st) throw new VitgpuError(`--init ${m.init}: no such file or run directory`);
  if (st.isDirectory()) file = join(file, 'best.safetensors');
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

const LAST = (runDir: string) => join(runDir, 'last', 'checkpoint.safetensors');

/** Trains (or resumes) the run in `runDir`; returns the final loop state. */
export async function trainRun(device: Device, runDir: string, config: RunConfig | null, opts: { resume: boolean; reporter: Reporter }): Promise<TrainState> {
  const { reporter } = opts;
  await mkdir(runDir, { recursive: true });
  const lastPath = LAST(runDir);
  const hasLast = await stat(lastPath).then(() => true, () => false);
  let resumed: Awaited<ReturnType<typeof loadTrainCheckpoint>> | null = null;
  if (opts.resume) {
    if (!hasLast) throw new VitgpuError(`--resume: ${runDir} has no checkpoint (${lastPath})`);
    resumed = await loadTrainCheckpoint(device, lastPath);
    config = resumed.run as RunConfig;
    if (!config) throw new VitgpuError(`${lastPath}: the checkpoint has no run settings to resume with`);
    const st = resumed.state;
    reporter.info(`resuming ${runDir} after epoch ${st?.epoch ?? 0}${st?.batch ? `, batch ${st.batch} of epoch ${st.epoch + 1}` : ''}`);
  } else if (hasLast) {
    throw new VitgpuError(`${runDir} already holds a run (${lastPath}); pass --resume to continue it, or choose another --out`);
  }
  if (!config) throw new VitgpuError('no run settings');
  const t = config.train;
  const pool = new ImagePool({ workers: config.data.workers });
  try {
    const data = await openData(config.data, config.model.imageSize, reporter, undefined, pool);
    const labels = data.list.labelNames;
    if (t.trainFraction !== undefined && t.trainFraction < 1) {
      // Before pos_weight: the loss weighs the labels as the subset, not the full split, has them.
      const subsetSeed = t.subsetSeed ?? t.seed;
      const full = splitSamples(data.samples, 'train').length;
      const { samples, subset } = withTrainSubset(data.samples, labels, { fraction: t.trainFraction, seed: subsetSeed, minPositives: t.minPositives });
      data.samples = samples;
      reporter.info(`training subset: ${subset.samples.length} of ${full} training rows (fraction ${t.trainFraction}, subset seed ${subsetSeed}` +
        `${subset.added ? `; ${subset.added} added so that every label keeps positives` : ''})`);
      if (subset.tooFew.length) reporter.info(`warning: too few positives in the training subset: ${describeTooFew(subset.tooFew)}`);
      const record = { fraction: t.trainFraction, seed: subsetSeed, images: subset.samples.length, of: full, target: subset.target, added: subset.added, positives: subset.counts, tooFew: subset.tooFew.map((c) => c.label) };
      if (!resumed) await writeFile(join(runDir, 'subset.json'), `${JSON.stringify(record, null, 2)}\n`);
    }
    const posWeight = Array.from(positiveWeights(data.samples, labels));
    const train = splitSamples(data.samples, 'train');
    const valid = splitSamples(data.samples, 'valid');
    reporter.info(`splits: ${train.length} train, ${valid.length} valid, ${splitSamples(data.samples, 'test').length} test (test is not used in training)`);
    if (!resumed) await writeFile(join(runDir, 'config.json'), `${JSON.stringify({ ...config, labels }, null, 2)}\n`);

    const model = resumed ? resumed.model : await initModel(device, config.model, labels.length, t.seed, reporter);
    if (resumed && resumed.labels.join() !== labels.join()) {
      throw new VitgpuError(`${lastPath} was trained on labels ${resumed.labels.join(', ')}, but the master list now gives ${labels.join(', ')}`);
    }
    const settings: TrainSettings = {
      labels,
      epochs: t.epochs,
      lr: t.lr,
      weightDecay: t.weightDecay,
      gradAccum: t.gradAccum,
      warmupSteps: t.warmupSteps,
      cosine: t.cosine,
      minLr: t.minLr,
      clipNorm: t.clipNorm,
      patience: t.patience,
      posWeight,
      checkpointSeconds: t.checkpointMinutes === undefined ? 30 * 60 : t.checkpointMinutes * 60,
      checkpointSteps: t.checkpointSteps ?? 0,
    };
    const trainer = new Trainer(device, model, settings);
    if (resumed) trainer.optimizer.loadMoments(resumed.moments, resumed.optimizerStep);
    const trainLoader = makeLoader(train, config.data, data.imageRoot, config.model.imageSize, t.batchSize, pool, t);
    const validLoader = makeLoader(valid, config.data, data.imageRoot, config.model.imageSize, t.batchSize, pool, null);
    const state = resumed?.state ?? initialState();
    const logPath = join(runDir, 'log.jsonl');
    if (resumed) {
      // The log may hold an epoch the checkpoint does not (killed between the two): rewrite it from the checkpoint.
      const tmp = `${logPath}.tmp-${process.pid}`;
      await writeFile(tmp, state.history.map((r) => `${JSON.stringify(r)}\n`).join(''));
      await rename(tmp, logPath);
    }
    try {
      const final = await trainer.run(batchSource(trainLoader, train.length), batchSource(validLoader, valid.length), state, {
        onStep: (info) => reporter.step?.(info),
        onEpoch: (record) => reporter.epochEnd?.(record),
        saveCheckpoint: async (st, optimizer, best, midEpoch) => {
          if (midEpoch) {
            await saveTrainCheckpoint(lastPath, model, optimizer, { state: st, run: config, labels });
            return;
          }
          // Best first, then last, then the log line: whatever a kill interrupts, the last checkpoint
          // never claims an epoch whose best weights are missing, and resume rewrites the log from it.
          if (best) await saveTrainCheckpoint(join(runDir, 'best.safetensors'), model, null, { labels, run: config });
          await saveTrainCheckpoint(lastPath, model, optimizer, { state: st, run: config, labels });
          await appendFile(logPath, `${JSON.stringify(st.history[st.history.length - 1])}\n`);
        },
      });
      const summary = {
        runDir,
        epochs: final.epoch,
        stoppedEarly: final.epoch < t.epochs,
        bestEpoch: final.bestEpoch,
        bestValAuc: final.bestAuc,
        labels,
        badImages: data.bad.length,
        history: final.history,
      };
      const tmp = join(runDir, `.summary.json.tmp-${process.pid}`);
      await writeFile(tmp, `${JSON.stringify(summary, null, 2)}\n`);
      await rename(tmp, join(runDir, 'summary.json'));
      return final;
    } finally {
      trainer.dispose();
      model.dispose();
      await trainLoader.close();
      await validLoader.close();
    }
  } finally {
    await pool.close();
  }
}
