// The study's numbers, browser-safe: from every finished run's test-set predictions to the paper's
// tables, paired tests, training-size points and cross-dataset matrix. Everything in study.json comes
// from here; report-markdown.ts only formats it.
//
// - A run's AUC is the point estimate on its full test split (macro mean over labels with both
//   classes); its bootstrap (mean, std, 95% interval) uses the plan's resamples and seed.
// - A cell (dataset × initialization × fraction) aggregates its seeds: mean and sample std (ddof 1).
//   Its 95% interval is mean ± t(0.975, n−1)·std/√n with two or more seeds, and with one seed the
//   run's bootstrap percentile interval.
// - Paired tests: per dataset × fraction × seed, every initialization against the reference on the
//   same bootstrap resamples (eval/bootstrap.ts compareModels): one-sided p for "AUC above the
//   reference's", per label Benjamini–Hochberg adjusted across the labels within that comparison, and
//   for the mean AUC.
// - Cross-dataset: a model trained on A at the plan's largest fraction, tested on B's test split; its
//   mean AUC over the labels A and B share. The diagonal is the in-domain mean AUC over A's labels.

import { compareModels, type ModelComparison, type Summary } from '../eval/bootstrap.js';
import { evaluateLabels } from '../eval/metrics.js';
import type { GridRun, ResolvedPlan } from './grid.js';

export interface Predictions {
  labels: string[];
  paths: string[];
  truth: number[][];
  probs: number[][];
}

export interface RunResult {
  run: GridRun;
  test: Predictions;
  trainImages: number | null;
  epochs: number | null;
  bestEpoch: number | null;
  /** Cross tests: predictions on another dataset's test split (the run's label names). */
  cross: { test: string; predictions: Predictions }[];
}

export interface RunSummary extends GridRun {
  trainImages: number | null;
  epochs: number | null;
  bestEpoch: number | null;
  testImages: number;
  /** Point estimates on the full test split. */
  meanAuc: number | null;
  labelAuc: Record<string, number | null>;
  /** Bootstrap std of each label's AUC. */
  labelStd: Record<string, number | null>;
  /** Bootstrap of the mean AUC. */
  bootstrap: Summary | null;
}

export interface Cell {
  dataset: string;
  init: string;
  fraction: number;
  seeds: number;
  mean: number | null;
  /** Over seeds (ddof 1); with one seed, the run's bootstrap std. */
  std: number | null;
  stdOver: 'seeds' | 'bootstrap';
  lo: number | null;
  hi: number | null;
  labels: Record<string, { mean: number | null; std: number | null }>;
}

export interface PairedTest {
  dataset: string;
  fraction: number;
  seed: number;
  init: string;
  reference: string;
  labels: { label: string; p: number | null; pAdjusted: number | null }[];
  meanAuc: { p: number | null; diff: Summary | null };
}

export interface CrossCell {
  init: string;
  train: string;
  test: string;
  labels: string[];
  seeds: number;
  mean: number | null;
  std: number | null;
}

export interface StudyNumbers {
  name: string | null;
  reference: string;
  resamples: number;
  bootstrapSeed: number;
  runs: RunSummary[];
  cells: Cell[];
  tests: PairedTest[];
  cross: CrossCell[];
  missing: { id: string; reason: string }[];
}

const T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];

/** The 97.5th percentile of Student's t with df degrees of freedom (1.96 past 30). */
export function t975(df: number): number {
  return df >= 1 && df <= 30 ? T975[df - 1] : 1.96;
}

function meanStd(xs: number[]): { mean: number | null; std: number | null } {
  const v = xs.filter(Number.isFinite);
  if (v.length === 0) return { mean: null, std: null };
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const std = v.length < 2 ? null : Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1));
  return { mean, std };
}

const fin = (v: number | undefined | null): number | null => (v === undefined || v === null || !Number.isFinite(v) ? null : v);

/** Mean AUC over the labels with both classes, on a subset of the label columns. */
function meanAucOf(p: Predictions, columns: number[]): number | null {
  const pick = (rows: number[][]) => rows.map((r) => columns.map((j) => r[j]));
  const rep = evaluateLabels(columns.map((j) => p.labels[j]), pick(p.truth), pick(p.probs));
  return fin(rep.macro?.auc);
}

export function computeStudy(plan: ResolvedPlan, results: RunResult[], missing: { id: string; reason: string }[]): StudyNumbers {
  const opts = { resamples: plan.eval.resamples, seed: plan.eval.seed };
  const runs: RunSummary[] = [];
  const tests: PairedTest[] = [];
  const key = (r: GridRun) => `${r.dataset}\u0000${r.fraction}\u0000${r.seed}`;
  const groups = new Map<string, RunResult[]>();
  for (const r of results) groups.set(key(r.run), [...(groups.get(key(r.run)) ?? []), r]);

  for (const group of groups.values()) {
    const first = group[0].test;
    for (const r of group.slice(1)) {
      if (r.test.paths.join('\n') !== first.paths.join('\n') || r.test.labels.join() !== first.labels.join()) {
        throw new Error(`${r.run.id} and ${group[0].run.id} were not evaluated on the same test images and labels`);
      }
    }
    const hasReference = group.some((r) => r.run.init === plan.reference);
    const cmp: ModelComparison = compareModels(first.labels, first.truth, Object.fromEntries(group.map((r) => [r.run.init, r.test.probs])), {
      ...opts,
      baseline: hasReference && group.length > 1 ? plan.reference : undefined,
    });
    for (const r of group) {
      const res = cmp.results[r.run.init];
      runs.push({
        ...r.run, trainImages: r.trainImages, epochs: r.epochs, bestEpoch: r.bestEpoch, testImages: first.paths.length,
        meanAuc: fin(res.point.macro?.auc),
        labelAuc: Object.fromEntries(first.labels.map((l, j) => [l, fin(res.point.labels[j].metrics?.auc)])),
        labelStd: Object.fromEntries(first.labels.map((l, j) => [l, fin(res.labels[j].stats?.auc?.std)])),
        bootstrap: res.meanAuc.stats,
      });
      if (!hasReference || r.run.init === plan.reference) continue;
      const pair = cmp.pairs.find((p) => p.a === r.run.init && p.b === plan.reference)!;
      tests.push({
        dataset: r.run.dataset, fraction: r.run.fraction, seed: r.run.seed, init: r.run.init, reference: plan.reference,
        labels: pair.labels.map((l) => ({ label: l.label, p: l.p, pAdjusted: l.pAdjusted })),
        meanAuc: { p: pair.meanAuc.p, diff: pair.meanAuc.diff },
      });
    }
  }

  const cells: Cell[] = [];
  for (const d of plan.datasets) {
    for (const init of plan.inits) {
      for (const fraction of [...plan.fractions].sort((a, b) => a - b)) {
        const rs = runs.filter((r) => r.dataset === d.name && r.init === init.name && r.fraction === fraction);
        const ms = meanStd(rs.map((r) => r.meanAuc ?? NaN));
        const n = rs.filter((r) => r.meanAuc !== null).length;
        const one = n === 1 ? rs.find((r) => r.meanAuc !== null)! : null;
        const half = ms.std !== null ? (t975(n - 1) * ms.std) / Math.sqrt(n) : null;
        cells.push({
          dataset: d.name, init: init.name, fraction, seeds: n, mean: ms.mean,
          std: one ? fin(one.bootstrap?.std) : ms.std,
          stdOver: one ? 'bootstrap' : 'seeds',
          lo: one ? fin(one.bootstrap?.lo) : half !== null ? ms.mean! - half : null,
          hi: one ? fin(one.bootstrap?.hi) : half !== null ? ms.mean! + half : null,
          labels: Object.fromEntries(d.labelNames.map((l) => {
            const m = meanStd(rs.map((r) => r.labelAuc[l] ?? NaN));
            return [l, one ? { mean: m.mean, std: one.labelStd[l] ?? null } : m];
          })),
        });
      }
    }
  }

  const cross: CrossCell[] = [];
  const top = Math.max(...plan.fractions);
  for (const init of plan.inits) {
    for (const a of plan.datasets) {
      const own = runs.filter((r) => r.dataset === a.name && r.init === init.name && r.fraction === top);
      const ms = meanStd(own.map((r) => r.meanAuc ?? NaN));
      cross.push({ init: init.name, train: a.name, test: a.name, labels: a.labelNames, seeds: own.length, ...ms });
      for (const c of plan.crossTests.filter((x) => x.train === a.name)) {
        const values = results
          .filter((r) => r.run.dataset === a.name && r.run.init === init.name && r.run.fraction === top)
          .flatMap((r) => r.cross.filter((x) => x.test === c.test).map((x) => meanAucOf(x.predictions, c.shared.map((s) => x.predictions.labels.indexOf(s.train))) ?? NaN));
        cross.push({ init: init.name, train: a.name, test: c.test, labels: c.shared.map((s) => s.train), seeds: values.length, ...meanStd(values) });
      }
    }
  }

  return { name: plan.name ?? null, reference: plan.reference, resamples: opts.resamples, bootstrapSeed: opts.seed, runs, cells, tests, cross, missing };
}

/** Training-size figure points: each cell with a mean and an interval. */
export function trainingSizePoints(n: StudyNumbers): { dataset: string; init: string; fraction: number; mean: number; lo: number; hi: number }[] {
  return n.cells.flatMap((c) => (c.mean === null ? [] : [{ dataset: c.dataset, init: c.init, fraction: c.fraction, mean: c.mean, lo: c.lo ?? c.mean, hi: c.hi ?? c.mean }]));
}

