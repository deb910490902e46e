// Evaluating runs (Node): metrics with bootstrap intervals, paired comparisons between runs on the same
// resampled indices, and the files users read.
//
//   OUT/predictions.csv   (per model: predictions-NAME.csv)   image, then per label truth and probability
//   OUT/metrics.json      point metrics, bootstrap summaries, comparisons
//   OUT/table.md          AUC ± std per label and model, with paired p-values (BH across labels)
//   OUT/roc.png, roc.svg  ROC curves with 95% bootstrap bands, one panel per label

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { VitgpuError } from '../engine/errors.js';
import { writeFileAtomic } from '../engine/node.js';
import { compareModels } from '../eval/bootstrap.js';
import { rocCurve } from '../eval/metrics.js';
import { markdownTable, predictionsCsv, youdenTable } from '../eval/report.js';
import { bootstrapIndices } from '../eval/bootstrap.js';
import { rocBand } from '../eval/roc-band.js';
import { rocSpec, type RocFigurePanel } from '../eval/plots/specs.js';
import { writeFigure } from '../eval/plots/render-node.js';
import type { RunPredictions } from './predict-node.js';

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
  const panels = rocPanels(preds, comparison, opts);
  if (panels.length) {
    files.push(...(await writeFigure(join(outDir, 'roc'), rocSpec(panels, { title: `ROC curves, ${opts.split} split (95% bootstrap bands)` }))));
  }
  return { table, files };
}
