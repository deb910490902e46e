// Evaluating trained runs on a split (Node): predictions, metrics with bootstrap intervals, paired
// comparisons between runs on the same resampled indices, and the files users read.
//
//   OUT/predictions.csv   (per model: predictions-NAME.csv)   image, then per label truth and probability
//   OUT/metrics.json      point metrics, bootstrap summaries, comparisons
//   OUT/table.md          AUC ± std per label and model, with paired p-values (BH across labels)
//   OUT/roc.png, roc.svg  ROC curves with 95% bootstrap bands, one panel per label

import { mkdir, writeFile, rename } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { Device } from '../engine/device.js';
import { VitgpuError } from '../engine/errors.js';
import { openFileSource } from '../engine/node.js';
import { readHeader } from '../models/safetensors.js';
import { loadVit } from '../models/load.js';
import type { VisionTransformer } from '../models/vit.js';
import { splitSamples, type Split } from '../datasets/dataset.js';
import { ImagePool } from '../datasets/loader-node.js';
import { compareModels } from '../eval/bootstrap.js';
import { rocCurve } from '../eval/metrics.js';
import { markdownTable, predictionsCsv } from '../eval/report.js';
import { bootstrapIndices } from '../eval/bootstrap.js';
import { rocBand } from '../eval/roc-band.js';
import { rocSpec, type RocFigurePanel } from '../eval/plots/specs.js';
import { writeFigure } from '../eval/plots/render-node.js';
import { batchSource, makeLoader, openData, type DataOptions, type Reporter, type RunConfig } from './run-node.js';
import { predictSource } from './trainer.js';

export interface RunPredictions {
  name: string;
  labels: string[];
  paths: string[];
  /** [sample][label], NaN where the label is ignored. */
  truth: number[][];
  probs: number[][];
}

async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

/** The run settings stored with a run's best checkpoint. */
export async function runSettings(runDir: string): Promise<{ file: string; config: RunConfig; labels: string[] }> {
  const file = join(runDir, 'best.safetensors');
  const src = await openFileSource(file).catch((err: NodeJS.ErrnoException) => {
    throw new VitgpuError(`${runDir}: no best.safetensors (${err.code ?? err.message}); is this a vitgpu run directory?`);
  });
  try {
    const h = await readHeader(src);
    if (!h.metadata.run) throw new VitgpuError(`${file}: no run settings in __metadata__ (not written by vitgpu train)`);
    return { file, config: JSON.parse(h.metadata.run) as RunConfig, labels: (h.metadata.labels ?? '').split(',').filter(Boolean) };
  } finally {
    await src.close();
  }
}

/** The model in a vitgpu checkpoint file (a run's best.safetensors). */
export async function loadRunModel(device: Device, file: string): Promise<VisionTransformer> {
  const src = await openFileSource(file);
  try {
    return (await loadVit(device, src)).model;
  } finally {
    await src.close();
  }
}

/** Predictions of a run's best model on `split` of its master list (or of `data`, when given). */
export async function predictRun(
  device: Device, runDir: string, opts: { data?: Partial<DataOptions>; split: Split; batchSize?: number; reporter: Reporter; name?: string; pool?: ImagePool },
): Promise<RunPredictions> {
  const { file, config, labels } = await runSettings(runDir);
  const data: DataOptions = { ...config.data, ...Object.fromEntries(Object.entries(opts.data ?? {}).filter(([, v]) => v !== undefined)) };
  if (opts.data?.data && !opts.data.imageRoot) data.imageRoot = undefined;
  data.labels = labels;
  const pool = opts.pool ?? new ImagePool({ workers: data.workers });
  try {
    const opened = await openData(data, config.model.imageSize, opts.reporter, [opts.split], pool);
    const samples = splitSamples(opened.samples, opts.split);
    const model = await loadRunModel(device, file);
    const loader = makeLoader(samples, data, opened.imageRoot, model.config.imageSize, opts.batchSize ?? config.train.batchSize, pool, null);
    try {
      const p = await predictSource(device, model, batchSource(loader, samples.length), labels.length);
      const l = labels.length;
      const rows = (a: Float32Array) => Array.from({ length: samples.length }, (_, i) => Array.from(a.subarray(i * l, (i + 1) * l)));
      return { name: opts.name ?? basename(resolve(runDir)), labels, paths: p.paths, truth: rows(p.truth), probs: rows(p.probs) };
    } finally {
      await loader.close();
      model.dispose();
    }
  } finally {
    if (!opts.pool) await pool.close();
  }
}

/** Per model: the Youden-threshold metrics per label, bootstrap mean ± std, as markdown. */
function youdenTables(results: ReturnType<typeof compareModels>['results'], labels: string[]): string {
  const pct = (s: { mean: number; std: number } | undefined) => (s ? `${(100 * s.mean).toFixed(2)} ± ${(100 * s.std).toFixed(2)}` : 'n/a');
  const parts: string[] = [];
  for (const [name, r] of Object.entries(results)) {
    parts.push(`\n\n## ${name}: metrics at the Youden threshold (recomputed in each resample), %\n`);
    parts.push('| Label | Threshold | Accuracy | Sensitivity | Specificity | Precision | F1 |');
    parts.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    labels.forEach((label, j) => {
      const st = r.labels[j].stats;
      if (!st) {
        parts.push(`| ${label} | n/a (one class) | | | | | |`);
        return;
      }
      const thr = `${st.threshold.mean.toFixed(4)} ± ${st.threshold.std.toFixed(4)}`;
      parts.push(`| ${label} | ${thr} | ${pct(st.accuracy)} | ${pct(st.sensitivity)} | ${pct(st.specificity)} | ${pct(st.precision)} | ${pct(st.f1)} |`);
    });
  }
  return parts.join('\n');
}

/** One ROC panel per label with both classes: each model's curve, 95% bootstrap band and AUC interval. */
function rocPanels(preds: RunPredictions[], comparison: ReturnType<typeof compareModels>, opts: { resamples: number; seed: number }): RocFigurePanel[] {
  const first = preds[0];
  const indices = bootstrapIndices(first.truth.length, opts.resamples, opts.seed);
  const panels: RocFigurePanel[] = [];
  first.labels.forEach((label, j) => {
    const truth = first.truth.map((t) => t[j]);
    const known = truth.filter((v) => !Number.isNaN(v));
    const positives = known.filter((v) => v === 1).length;
    if (positives === 0 || positives === known.length) return;
    const models = preds.map((p) => {
      const scores = p.probs.map((r) => r[j]);
      const y: number[] = [];
      const s: number[] = [];
      truth.forEach((t, i) => {
        if (!Number.isNaN(t)) {
          y.push(t);
          s.push(scores[i]);
        }
      });
      const c = rocCurve(y, s);
      const r = comparison.results[p.name];
      const ci = r.labels[j].stats?.auc;
      return { name: p.name, fpr: c.fpr, tpr: c.tpr, auc: r.point.labels[j].metrics?.auc ?? NaN, aucLo: ci?.lo, aucHi: ci?.hi, band: rocBand(truth, scores, indices) };
    });
    panels.push({ label, n: known.length, positives, models });
  });
  return panels;
}

/** Evaluates and compares runs on the same test samples and writes the report files to `outDir`. */
export async function writeEvaluation(
  preds: RunPredictions[], outDir: string, opts: { resamples: number; seed: number; baseline?: string; split: string },
): Promise<{ table: string; files: string[] }> {
  const first = preds[0];
  for (const p of preds.slice(1)) {
    if (p.labels.join() !== first.labels.join()) {
      throw new VitgpuError(`runs ${first.name} and ${p.name} have different labels (${first.labels.join(', ')} vs ${p.labels.join(', ')})`);
    }
    if (p.paths.join('\n') !== first.paths.join('\n')) throw new VitgpuError(`runs ${first.name} and ${p.name} were evaluated on different images`);
  }
  const names = preds.map((p) => p.name);
  if (new Set(names).size !== names.length) throw new VitgpuError(`two runs have the same name (${names.join(', ')}); pass --names`);
  const comparison = compareModels(first.labels, first.truth, Object.fromEntries(preds.map((p) => [p.name, p.probs])), {
    resamples: opts.resamples,
    seed: opts.seed,
    baseline: preds.length > 1 ? (opts.baseline ?? names[names.length - 1]) : undefined,
  });
  await mkdir(outDir, { recursive: true });
  const files: string[] = [];
  for (const p of preds) {
    const f = join(outDir, preds.length === 1 ? 'predictions.csv' : `predictions-${p.name}.csv`);
    await writeAtomic(f, predictionsCsv(p.paths, p.labels, p.truth, p.probs));
    files.push(f);
  }
  const table = markdownTable(comparison) + youdenTables(comparison.results, first.labels);
  const header = `# ${opts.split} split: ${first.paths.length} images, ${opts.resamples} bootstrap resamples (seed ${opts.seed})\n\n`;
  await writeAtomic(join(outDir, 'table.md'), header + table);
  files.push(join(outDir, 'table.md'));
  await writeAtomic(join(outDir, 'metrics.json'), `${JSON.stringify({ split: opts.split, images: first.paths.length, ...comparison }, null, 2)}\n`);
  files.push(join(outDir, 'metrics.json'));
  const panels = rocPanels(preds, comparison, opts);
  if (panels.length) {
    files.push(...(await writeFigure(join(outDir, 'roc'), rocSpec(panels, { title: `ROC curves, ${opts.split} split (95% bootstrap bands)` }))));
  }
  return { table, files };
}
