// Evaluating runs (Node): metrics with bootstrap intervals, paired comparisons between runs on the same
// resampled indices, and the files users read.
//
//   OUT/predictions.csv   (per model: predictions-NAME.csv)   image, then per label truth and probability
//   OUT/metrics.json      point metrics, bootstrap summaries, comparisons
//   OUT/table.md          AUC ± std per label and model, with paired p-values (BH across labels)
//   OUT/roc.png           ROC curves, one panel per label

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { VitgpuError } from '../engine/errors.js';
import { writeFileAtomic } from '../engine/node.js';
import { compareModels } from '../eval/bootstrap.js';
import { rocCurve } from '../eval/metrics.js';
import { markdownTable, predictionsCsv, youdenTable } from '../eval/report.js';
import { rocPlotPng, type RocPanel } from '../eval/roc-plot.js';
import type { RunPredictions } from './predict-node.js';

/** Evaluates and compares runs on the same test samples and writes the report files to `outDir`. */
export async function writeEvaluation(
  preds: RunPredictions[], outDir: string,
  opts: { resamples: number; seed: number; baseline?: string; split: string; thresholds?: Record<string, Float64Array> | null },
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
    // With each run's validation thresholds the decision rule is fixed before the test split is seen;
    // without them, Youden's threshold is picked on the test split itself, as the paper does.
    ...(opts.thresholds ? { thresholdPolicy: 'valid' as const, thresholds: opts.thresholds } : { thresholdPolicy: 'test' as const }),
  });
  await mkdir(outDir, { recursive: true });
  const files: string[] = [];
  for (const p of preds) {
    const f = join(outDir, preds.length === 1 ? 'predictions.csv' : `predictions-${p.name}.csv`);
    await writeFileAtomic(f, predictionsCsv(p.paths, p.labels, p.truth, p.probs));
    files.push(f);
  }
  const table = markdownTable(comparison) + youdenTable(comparison);
  const header = `# ${opts.split} split: ${first.paths.length} images, ${opts.resamples} bootstrap resamples (seed ${opts.seed})\n\n`;
  await writeFileAtomic(join(outDir, 'table.md'), header + table);
  files.push(join(outDir, 'table.md'));
  await writeFileAtomic(join(outDir, 'metrics.json'), `${JSON.stringify({ split: opts.split, images: first.paths.length, ...comparison }, null, 2)}\n`);
  files.push(join(outDir, 'metrics.json'));
  const panels: RocPanel[] = [];
  first.labels.forEach((label, j) => {
    const models = preds.flatMap((p) => {
      const y: number[] = [];
      const s: number[] = [];
      p.truth.forEach((t, i) => {
        if (!Number.isNaN(t[j])) {
          y.push(t[j]);
          s.push(p.probs[i][j]);
        }
      });
      if (!y.includes(0) || !y.includes(1)) return [];
      const c = rocCurve(y, s);
      const auc = comparison.results[p.name].point.labels[j].metrics?.auc ?? NaN;
      return [{ name: p.name, fpr: c.fpr, tpr: c.tpr, auc }];
    });
    if (models.length) panels.push({ label, models });
  });
  if (panels.length) {
    await writeFileAtomic(join(outDir, 'roc.png'), rocPlotPng(panels));
    files.push(join(outDir, 'roc.png'));
  }
  return { table, files };
}
