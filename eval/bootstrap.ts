// Bootstrap confidence intervals and paired model comparisons (the paper's "Evaluation" section). Pure
// CPU, browser-safe, reproducible: resampling uses the seeded mulberry32 generator below, so a seed gives
// the same indices in Node and in every browser.
//
// - A resample draws n test images with replacement; every label of an image comes along, and a label's
//   missing (NaN) truths stay left out for that label.
// - Thresholds (thresholdPolicy): 'test' recomputes each label's Youden threshold in every resample, as
//   the paper does; 'valid' applies the given thresholds (chosen on the validation split, see
//   eval/thresholds.ts) unchanged in every resample. The metrics are those at the threshold.
// - A resample whose threshold is not finite (no threshold beats chance: Youden's J <= 0 at every cut)
//   still counts for the AUC; it is counted as `uninformative` and left out of the threshold and the
//   metrics at it, which summarize the other resamples.
// - A label whose resample holds one class only is skipped for that resample and the skip is counted
//   (`valid` + `skipped` = resamples). Whether a resample is valid depends only on the truth and the
//   indices, so all models of a comparison skip the same resamples.
// - The mean AUC of a resample averages the labels that are 'ok' on the full test set; a resample where
//   any of them has one class is skipped for the mean (the family of labels never changes).
// - Summaries: mean; std is the sample standard deviation (ddof = 1; NaN with fewer than 2 values, and
//   then the label's status is not 'ok', so metrics.json holds no null under 'ok'); the 95% interval is the 2.5th and 97.5th percentiles with linear interpolation between
//   order statistics (numpy.percentile's default).
// - Paired comparison: every model is evaluated on the same indices; for the ordered pair (A, B) the
//   one-sided p-value is the fraction of valid resamples where AUC_A <= AUC_B ("A not above B"), per
//   label and for the mean AUC. Per-label p-values of a pair are Benjamini–Hochberg adjusted with the
//   pair's labels as the family.

import {
  EvalInputError,
  LABEL_METRICS,
  countsAtThreshold,
  evaluateLabels,
  labelColumns,
  orderByScoreDesc,
  rocWalk,
  walkMetrics,
  type LabelColumn,
  type LabelReport,
  type LabelStatus,
} from './metrics.js';
import type { ThresholdPolicy } from './thresholds.js';

import { mulberry32 } from '../engine/prng.js';

export { mulberry32 };

/** `resamples` arrays of n indices in [0, n), drawn with replacement from mulberry32(seed). */
export function bootstrapIndices(n: number, resamples: number, seed: number): Int32Array[] {
  if (!Number.isInteger(n) || n < 1) throw new EvalInputError(`bootstrapIndices: n must be a positive integer, got ${n}`);
  if (!Number.isInteger(resamples) || resamples < 1) {
    throw new EvalInputError(`bootstrapIndices: resamples must be a positive integer, got ${resamples}`);
  }
  const random = mulberry32(seed);
  const out: Int32Array[] = [];
  for (let r = 0; r < resamples; r++) {
    const idx = new Int32Array(n);
    for (let i = 0; i < n; i++) idx[i] = Math.floor(random() * n);
    out.push(idx);
  }
  return out;
}

export type BootstrapMetric = (typeof LABEL_METRICS)[number];

/** A statistic's distribution over the valid resamples. */
export interface Summary {
  mean: number;
  /** Sample standard deviation, ddof = 1. */
  std: number;
  /** 2.5th and 97.5th percentiles (linear interpolation, numpy's default). */
  lo: number;
  hi: number;
}

/**
 * 'single-class': one class on the full test set (stats null). 'too-few-resamples': fewer than 2
 * resamples with both classes (no std). 'no-informative-threshold': fewer than 2 resamples with a finite
 * threshold (the threshold and the metrics at it are null or have no std). 'ok': every summary is finite.
 */
export type BootstrapStatus = Exclude<LabelStatus, 'no-informative-threshold'> | 'too-few-resamples' | 'no-informative-threshold';

export interface BootstrapLabel {
  label: string;
  status: BootstrapStatus;
  /** Resamples in which the label had both classes (its AUC summarizes these), and those skipped. */
  valid: number;
  skipped: number;
  /** Valid resamples without a finite threshold; the threshold and the metrics at it summarize the other valid - uninformative. */
  uninformative: number;
  /** null when no resample was valid; a metric is null when no resample had a finite threshold. */
  stats: Record<BootstrapMetric, Summary | null> | null;
}

export interface BootstrapResult {
  resamples: number;
  /** null when the indices were given rather than drawn. */
  seed: number | null;
  /** Where the thresholds come from, and the fixed ones ('valid'; NaN where that split had one class → null in JSON). */
  thresholdPolicy: ThresholdPolicy;
  thresholds: number[] | null;
  labels: BootstrapLabel[];
  /** The macro mean AUC over the labels with both classes on the full set ('no-labels' when there is none). */
  meanAuc: { status: 'ok' | 'too-few-resamples' | 'no-labels'; valid: number; skipped: number; stats: Summary | null };
  /** Point estimates on the full, unresampled test set. */
  point: LabelReport;
}

export interface BootstrapOptions {
  /** Default 1000. Ignored when indices are given. */
  resamples?: number;
  /** Default 0. Ignored when indices are given. */
  seed?: number;
  /** Explicit resamples (each of length n), e.g. shared with another evaluation. */
  indices?: readonly Int32Array[];
  /** 'test' (default without thresholds): Youden's threshold recomputed in each resample. 'valid': `thresholds` applied unchanged. */
  thresholdPolicy?: ThresholdPolicy;
  /** One threshold per label, chosen on the validation split (eval/thresholds.ts youdenThresholds). */
  thresholds?: ArrayLike<number> | null;
}

function resolvePolicy(policy: ThresholdPolicy | undefined, thresholds: ArrayLike<number> | null | undefined, labels: number, what: string): Float64Array | null {
  const p = policy ?? (thresholds ? 'valid' : 'test');
  if (p === 'test') {
    if (thresholds) throw new EvalInputError(`${what}: thresholds given with thresholdPolicy 'test' (which recomputes them on the test split)`);
    return null;
  }
  if (!thresholds) throw new EvalInputError(`${what}: thresholdPolicy 'valid' needs the thresholds chosen on the validation split`);
  if (thresholds.length !== labels) throw new EvalInputError(`${what}: ${thresholds.length} thresholds for ${labels} labels`);
  return Float64Array.from(thresholds);
}

/** Mean, sample std (ddof = 1) and 95% percentile interval of the non-NaN values; null when there are none. */
export function summarize(values: ArrayLike<number>): Summary | null {
  const xs = Array.from(values).filter((v) => !Number.isNaN(v));
  if (xs.length === 0) return null;
  const mean = xs.reduce((s, v) => s + v, 0) / xs.length;
  const std = xs.length < 2 ? NaN : Math.sqrt(xs.reduce((s, v) => s + (v - mean) * (v - mean), 0) / (xs.length - 1));
  xs.sort((a, b) => a - b);
  return { mean, std, lo: percentile(xs, 2.5), hi: percentile(xs, 97.5) };
}

/** numpy.percentile's 'linear' method on ascending values. */
function percentile(sorted: readonly number[], q: number): number {
  const h = ((sorted.length - 1) * q) / 100;
  const i = Math.floor(h);
  const a = sorted[i];
  const b = sorted[Math.min(i + 1, sorted.length - 1)];
  return a === b ? a : a + (h - i) * (b - a);
}

/** One model's per-resample values: NaN where the resample was skipped. */
interface Resampled {
  point: LabelReport;
  /** [label][metric] → one value per resample. */
  values: Record<BootstrapMetric, Float64Array>[];
  meanAuc: Float64Array;
}

function resolveIndices(n: number, options: Pick<BootstrapOptions, 'indices' | 'resamples' | 'seed'>): { indices: readonly Int32Array[]; seed: number | null } {
  if (options.indices !== undefined) {
    if (options.indices.length === 0) throw new EvalInputError('bootstrap: indices holds no resample');
    options.indices.forEach((idx, r) => {
      if (idx.length !== n) throw new EvalInputError(`bootstrap: resample ${r} has ${idx.length} indices for ${n} samples`);
      for (const i of idx) if (i < 0 || i >= n) throw new EvalInputError(`bootstrap: resample ${r} holds index ${i}, outside [0, ${n})`);
    });
    return { indices: options.indices, seed: null };
  }
  const seed = options.seed ?? 0;
  return { indices: bootstrapIndices(n, options.resamples ?? 1000, seed), seed };
}

function resample(
  labelNames: readonly string[],
  truth: readonly (readonly number[])[],
  probs: readonly (readonly number[])[],
  indices: readonly Int32Array[],
  thresholds: Float64Array | null,
): Resampled {
  const columns: LabelColumn[] = labelColumns(labelNames, truth, probs);
  const point = evaluateLabels(labelNames, truth, probs, thresholds);
  const orders = columns.map((col) => orderByScoreDesc(col.scores, col.samples));
  const okLabels = point.labels.flatMap((r, l) => (r.status !== 'single-class' ? [l] : []));
  const R = indices.length;
  const values = columns.map(() => {
    const v = {} as Record<BootstrapMetric, Float64Array>;
    for (const m of LABEL_METRICS) v[m] = new Float64Array(R).fill(NaN);
    return v;
  });
  const meanAuc = new Float64Array(R).fill(NaN);
  const counts = new Int32Array(truth.length);
  for (let r = 0; r < R; r++) {
    counts.fill(0);
    for (const i of indices[r]) counts[i]++;
    columns.forEach((col, l) => {
      let walk = rocWalk(orders[l], col.truth, col.scores, counts);
      if (walk.positives === 0 || walk.negatives === 0) return;
      if (thresholds) walk = { ...walk, threshold: thresholds[l], ...countsAtThreshold(col.samples, col.truth, col.scores, thresholds[l], counts) };
      values[l].auc[r] = walk.auc;
      if (!Number.isFinite(walk.threshold)) return; // uninformative: left out of the threshold metrics
      const metrics = walkMetrics(walk);
      for (const m of LABEL_METRICS) values[l][m][r] = metrics[m];
    });
    if (okLabels.length > 0) {
      // NaN (a skipped label) propagates and marks the resample invalid for the mean.
      meanAuc[r] = okLabels.reduce((s, l) => s + values[l].auc[r], 0) / okLabels.length;
    }
  }
  return { point, values, meanAuc };
}

function countValid(values: Float64Array): number {
  let valid = 0;
  for (const v of values) if (!Number.isNaN(v)) valid++;
  return valid;
}

function summarizeResampled(labelNames: readonly string[], data: Resampled, R: number, seed: number | null, thresholds: Float64Array | null): BootstrapResult {
  const labels = labelNames.map((label, l): BootstrapLabel => {
    const valid = countValid(data.values[l].auc);
    const informative = countValid(data.values[l].threshold);
    let stats: Record<BootstrapMetric, Summary | null> | null = null;
    if (valid > 0) {
      stats = {} as Record<BootstrapMetric, Summary | null>;
      for (const m of LABEL_METRICS) stats[m] = summarize(data.values[l][m]);
    }
    const status: BootstrapStatus =
      data.point.labels[l].status === 'single-class' ? 'single-class' : valid < 2 ? 'too-few-resamples' : informative < 2 ? 'no-informative-threshold' : 'ok';
    return { label, status, valid, skipped: R - valid, uninformative: valid - informative, stats };
  });
  const meanValid = countValid(data.meanAuc);
  const anyLabel = data.point.labels.some((r) => r.status !== 'single-class');
  return {
    resamples: R,
    seed,
    thresholdPolicy: thresholds ? 'valid' : 'test',
    thresholds: thresholds ? Array.from(thresholds) : null,
    labels,
    meanAuc: { status: !anyLabel ? 'no-labels' : meanValid < 2 ? 'too-few-resamples' : 'ok', valid: meanValid, skipped: R - meanValid, stats: summarize(data.meanAuc) },
    point: data.point,
  };
}

/**
 * Bootstrap distribution of every label's AUC, Youden threshold and metrics at it, and of the mean AUC:
 * mean ± std (ddof = 1) and 95% percentile interval over the valid resamples. truth and probs are
 * [sample][label], truth 0, 1 or NaN (missing).
 */
export function bootstrapEvaluate(
  labelNames: readonly string[],
  truth: readonly (readonly number[])[],
  probs: readonly (readonly number[])[],
  options: BootstrapOptions = {},
): BootstrapResult {
  const thresholds = resolvePolicy(options.thresholdPolicy, options.thresholds, labelNames.length, 'bootstrapEvaluate');
  const { indices, seed } = resolveIndices(truth.length, options);
  return summarizeResampled(labelNames, resample(labelNames, truth, probs, indices, thresholds), indices.length, seed, thresholds);
}

/**
 * Benjamini–Hochberg adjusted p-values (step-up, monotone in the raw p-values, capped at 1). NaN entries
 * are passed through and not counted in the family size.
 */
export function benjaminiHochberg(pvalues: readonly number[]): number[] {
  const out = pvalues.map(() => NaN);
  const order = pvalues.flatMap((p, i) => (Number.isNaN(p) ? [] : [i])).sort((a, b) => pvalues[a] - pvalues[b]);
  const m = order.length;
  let running = 1;
  for (let k = m - 1; k >= 0; k--) {
    const p = pvalues[order[k]];
    // max(p, ·) keeps p·m/m from rounding a hair below p.
    running = Math.min(running, Math.max(p, (p * m) / (k + 1)));
    out[order[k]] = running;
  }
  return out;
}

/** 'ok': at least 2 shared valid resamples; 'too-few-resamples': fewer (p or the difference's std is then null). */
export type PairStatus = 'ok' | 'too-few-resamples';

export interface PairLabel {
  label: string;
  status: PairStatus;
  /** Resamples where the label had both classes. */
  valid: number;
  /** Fraction of valid resamples with AUC_A <= AUC_B; null when none was valid. */
  p: number | null;
  /** Benjamini–Hochberg across the pair's labels. */
  pAdjusted: number | null;
  /** AUC_A − AUC_B over the valid resamples. */
  diff: Summary | null;
}

/** The one-sided test "A's AUC is above B's" on the shared resamples. */
export interface PairComparison {
  a: string;
  b: string;
  labels: PairLabel[];
  /** The same for the mean AUC (one test: not adjusted). */
  meanAuc: { status: PairStatus; valid: number; p: number | null; diff: Summary | null };
}

export interface ModelComparison {
  labelNames: string[];
  models: string[];
  baseline: string | null;
  resamples: number;
  seed: number | null;
  thresholdPolicy: ThresholdPolicy;
  /** Each model's bootstrap on the shared indices. */
  results: Record<string, BootstrapResult>;
  /** With a baseline: (A, baseline) and (baseline, A) for every other A; otherwise every ordered pair. */
  pairs: PairComparison[];
}

export interface CompareOptions extends Omit<BootstrapOptions, 'thresholds'> {
  baseline?: string;
  /** With thresholdPolicy 'valid': each model's thresholds, chosen on its validation predictions. */
  thresholds?: Readonly<Record<string, ArrayLike<number>>> | null;
}

function pairOf(labelNames: readonly string[], a: string, b: string, A: Resampled, B: Resampled): PairComparison {
  const test = (va: Float64Array, vb: Float64Array) => {
    const diffs: number[] = [];
    let notAbove = 0;
    for (let r = 0; r < va.length; r++) {
      if (Number.isNaN(va[r]) || Number.isNaN(vb[r])) continue;
      diffs.push(va[r] - vb[r]);
      if (va[r] <= vb[r]) notAbove++;
    }
    const status: PairStatus = diffs.length < 2 ? 'too-few-resamples' : 'ok';
    return { status, valid: diffs.length, p: diffs.length === 0 ? null : notAbove / diffs.length, diff: summarize(diffs) };
  };
  const raw = labelNames.map((_, l) => test(A.values[l].auc, B.values[l].auc));
  const adjusted = benjaminiHochberg(raw.map((t) => t.p ?? NaN));
  return {
    a,
    b,
    labels: raw.map((t, l) => ({ label: labelNames[l], status: t.status, valid: t.valid, p: t.p, pAdjusted: t.p === null ? null : adjusted[l], diff: t.diff })),
    meanAuc: test(A.meanAuc, B.meanAuc),
  };
}

/**
 * Bootstraps every model on the same resampled indices and tests each ordered pair (A, B): per label
 * and for the mean AUC, p = fraction of valid resamples where AUC_A <= AUC_B; per-label p-values
 * Benjamini–Hochberg adjusted within the pair.
 */
export function compareModels(
  labelNames: readonly string[],
  truth: readonly (readonly number[])[],
  probsByModel: Readonly<Record<string, readonly (readonly number[])[]>>,
  options: CompareOptions = {},
): ModelComparison {
  const models = Object.keys(probsByModel);
  if (models.length === 0) throw new EvalInputError('compareModels: no model given');
  const baseline = options.baseline ?? null;
  if (baseline !== null && !models.includes(baseline)) {
    throw new EvalInputError(`compareModels: baseline ${JSON.stringify(baseline)} is not one of ${JSON.stringify(models)}`);
  }
  const policy = options.thresholdPolicy ?? (options.thresholds ? 'valid' : 'test');
  const missing = policy === 'valid' ? models.filter((m) => !options.thresholds?.[m]) : [];
  if (missing.length) throw new EvalInputError(`compareModels: thresholdPolicy 'valid' needs validation thresholds for ${missing.map((m) => JSON.stringify(m)).join(', ')}`);
  const thresholds = Object.fromEntries(models.map((m) => [m, resolvePolicy(policy, options.thresholds?.[m], labelNames.length, `compareModels (${m})`)]));
  const { indices, seed } = resolveIndices(truth.length, options);
  const data: Record<string, Resampled> = {};
  const results: Record<string, BootstrapResult> = {};
  for (const name of models) {
    data[name] = resample(labelNames, truth, probsByModel[name], indices, thresholds[name]);
    results[name] = summarizeResampled(labelNames, data[name], indices.length, seed, thresholds[name]);
  }
  const pairs: PairComparison[] = [];
  for (const a of models) {
    for (const b of models) {
      if (a === b || (baseline !== null && a !== baseline && b !== baseline)) continue;
      pairs.push(pairOf(labelNames, a, b, data[a], data[b]));
    }
  }
  return { labelNames: [...labelNames], models, baseline, resamples: indices.length, seed, thresholdPolicy: policy, results, pairs };
}

/** The comparison of the ordered pair (a, b), if it was made. */
export function findPair(comparison: ModelComparison, a: string, b: string): PairComparison | undefined {
  return comparison.pairs.find((p) => p.a === a && p.b === b);
}
