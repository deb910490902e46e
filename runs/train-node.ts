// Training a run (Node): builds the model from its initialization, trains with checkpoints every epoch
// (and inside epochs at the run's cadence) and resumes killed runs exactly. The files are described in
// run-dir-node.ts.

import { appendFile, mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Device } from '../engine/device.js';
import { VitgpuError } from '../engine/errors.js';
import { openFileSource, writeFileAtomic } from '../engine/node.js';
import { loadVit } from '../models/load.js';
import { VisionTransformer, presetConfig } from '../models/vit.js';
import { positiveWeights, splitSamples } from '../datasets/dataset.js';
import { ImagePool } from '../datasets/image-pool-node.js';
import { initialState, Trainer, type TrainState } from '../train/trainer.js';
import { loadTrainCheckpoint, saveTrainCheckpoint } from '../train/checkpoint-node.js';
import type { ModelOptions, Reporter, RunConfig } from './config.js';
import { openData, splitLoader } from './data-node.js';
import { runFiles } from './run-dir-node.js';

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

/** Trains (or resumes) the run in `runDir`; returns the final loop state. */
export async function trainRun(device: Device, runDir: string, config: RunConfig | null, opts: { resume: boolean; reporter: Reporter }): Promise<TrainState> {
  const { reporter } = opts;
  await mkdir(runDir, { recursive: true });
  const files = runFiles(runDir);
  const lastPath = files.last;
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
    const train = splitSamples(data.samples, 'train');
    const valid = splitSamples(data.samples, 'valid');
    reporter.info(`splits: ${train.length} train, ${valid.length} valid, ${splitSamples(data.samples, 'test').length} test (test is not used in training)`);
    if (!resumed) await writeFileAtomic(files.config, `${JSON.stringify({ ...config, labels }, null, 2)}\n`);

    const model = resumed ? resumed.model : await initModel(device, config.model, labels.length, t.seed, reporter);
    if (resumed && resumed.labels.join() !== labels.join()) {
      throw new VitgpuError(`${lastPath} was trained on labels ${resumed.labels.join(', ')}, but the master list now gives ${labels.join(', ')}`);
    }
    const trainer = new Trainer(device, model, t, labels, positiveWeights(data.samples, labels));
    if (resumed) trainer.optimizer.loadMoments(resumed.moments, resumed.optimizerStep);
    const trainLoader = splitLoader(train, config.data, data.imageRoot, config.model.imageSize, t.batchSize, pool, t);
    const validLoader = splitLoader(valid, config.data, data.imageRoot, config.model.imageSize, t.batchSize, pool, null);
    const state = resumed?.state ?? initialState();
    const logPath = files.log;
    if (resumed) {
      // The log may hold an epoch the checkpoint does not (killed between the two): rewrite it from the checkpoint.
      await writeFileAtomic(logPath, state.history.map((r) => `${JSON.stringify(r)}\n`).join(''));
    }
    try {
      const final = await trainer.run(trainLoader, validLoader, state, {
        onStep: (info) => reporter.step?.(info),
        onEpoch: (record) => reporter.epochEnd?.(record),
        saveCheckpoint: async (st, optimizer, best, midEpoch) => {
          if (midEpoch) {
            await saveTrainCheckpoint(lastPath, model, optimizer, { state: st, run: config, labels });
            return;
          }
          // Best first, then last, then the log line: whatever a kill interrupts, the last checkpoint
          // never claims an epoch whose best weights are missing, and resume rewrites the log from it.
          if (best) await saveTrainCheckpoint(files.best, model, null, { labels, run: config });
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
      await writeFileAtomic(files.summary, `${JSON.stringify(summary, null, 2)}\n`);
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
