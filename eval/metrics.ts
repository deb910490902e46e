// Per-label classification metrics: ROC AUC, the ROC curve, Youden's threshold, and the confusion-matrix
// metrics at that threshold, for multi-label test sets with missing labels. Pure CPU, browser-safe.
//
// Definitions (chosen to agree with scikit-learn, checked against its output in test/eval):
// - A label is 1 (positive) or 0 (negative); a score is a finite number, higher meaning "more positive".
// - AUC is the Mann–Whitney U statistic over positives × negatives with a tied pair counting ½ (average
//   ranks), which equals the trapezoidal area under the ROC curve (sklearn's roc_auc_score). NaN when
//   only one class is present.
// - The ROC curve has one point per distinct score, thresholds descending, preceded by (0, 0) at
//   threshold +Infinity (sklearn ≥ 1.3's roc_curve with drop_intermediate=False).
// - Youden's threshold is the curve threshold maximizing TPR − FPR; among equal maxima the first in
//   descending-threshold order wins (np.argmax on sklearn's arrays). It may be +Infinity (predict nothing
//   positive) when no threshold beats chance. A sample is predicted positive when score >= threshold.
// - 0/0 in a ratio (precision with no predicted positives, sensitivity with no positives, …) is 0, as
//   sklearn's zero_division default gives (sklearn also warns; we do not).
//
// Everything here goes through one walk over samples sorted by score (rocWalk), which also takes
// per-sample multiplicities: a bootstrap resample is a vector of counts over the original samples, so
// eval/bootstrap.ts sorts once and evaluates each resample in O(n).

import { VitgpuError } from '../engine/errors.js';

/** Labels, scores or shapes that cannot be evaluated; the message names the label and the sample. */
export class EvalInputError extends VitgpuError {}

export interface RocCurve {
  fpr: number[];
  tpr: number[];
  /** Descending; thresholds[0] is +Infinity (the point (0, 0)). */
  thresholds: number[];
}

/** The confusion-matrix metrics at one threshold. Ratios with a zero denominator are 0. */
export interface BinaryMetrics {
  accuracy: number;
  /** Recall, true positive rate: tp / (tp + fn). */
  sensitivity: number;
  /** True negative rate: tn / (tn + fp). */
  specificity: number;
  /** Positive predictive value: tp / (tp + fp). */
  precision: number;
  /** 2·tp / (2·tp + fp + fn). */
  f1: number;
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

/** One label's metrics at its Youden threshold. */
export interface LabelMetrics {
  auc: number;
  threshold: number;
  accuracy: number;
  sensitivity: number;
  specificity: number;
  precision: number;
  f1: number;
}

/**
 * 'single-class': the evaluated samples hold fewer than two classes; metrics is then null.
 * 'no-informative-threshold': the AUC is defined, but no threshold beats chance (Youden's J <= 0 at every
 * cut, or a given threshold that is not finite): the threshold is ±Infinity or NaN (null in JSON) and
 * the metrics at it are those of predicting every sample alike.
 */
export type LabelStatus = 'ok' | 'single-class' | 'no-informative-threshold';

export interface LabelResult {
  label: string;
  status: LabelStatus;
  /** Evaluated samples (truth not NaN) with truth 1 and 0. */
  positives: number;
  negatives: number;
  metrics: LabelMetrics | null;
}

/** Unweighted means over the labels that have metrics (the threshold is not averaged). */
export interface MacroMetrics {
  auc: number;
  accuracy: number;
  sensitivity: number;
  specificity: number;
  precision: number;
  f1: number;
  /** How many labels were averaged. */
  labels: number;
}

export interface LabelReport {
  labels: LabelResult[];
  /** null when no label is 'ok'. */
  macro: MacroMetrics | null;
}

/** The metric names of LabelMetrics, in report order. */
export const LABEL_METRICS = ['auc', 'threshold', 'accuracy', 'sensitivity', 'specificity', 'precision', 'f1'] as const;

/** What one pass over the sorted samples yields. Counts are weighted by the multiplicities. */
export interface RocWalk {
  positives: number;
  negatives: number;
  /** NaN when positives or negatives is 0. */
  auc: number;
  /** Youden threshold; NaN when positives or negatives is 0. */
  threshold: number;
  /** True and false positives at the Youden threshold. */
  tp: number;
  fp: number;
}

/** Indices of `scores` (or of `subset` of them) sorted by score, descending; ties keep index order. */
export function orderByScoreDesc(scores: ArrayLike<number>, subset?: ArrayLike<number>): Int32Array {
  const order = subset === undefined ? Int32Array.from({ length: scores.length }, (_, i) => i) : Int32Array.from(subset);
  return order.sort((a, b) => scores[b] - scores[a] || a - b);
}

/**
 * AUC, Youden threshold and the confusion counts at it, in one pass over `order` (sample indices sorted by
 * score descending, see orderByScoreDesc). `weights[i]` is how many times sample i counts (a bootstrap
 * resample's multiplicities); omitted, every sample counts once. Samples of weight 0 do not exist for the
 * curve: their scores yield no point. Labels must be 0/1 and scores finite (checked by the callers).
 */
export function rocWalk(
  order: ArrayLike<number>,
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  weights?: ArrayLike<number>,
): RocWalk {
  const m = order.length;
  let positives = 0;
  let negatives = 0;
  for (let k = 0; k < m; k++) {
    const i = order[k];
    const w = weights === undefined ? 1 : weights[i];
    if (labels[i] === 1) positives += w;
    else negatives += w;
  }
  if (positives === 0 || negatives === 0) {
    return { positives, negatives, auc: NaN, threshold: NaN, tp: 0, fp: 0 };
  }
  // twiceU: 2 × (pairs ranked correctly + ½ tied pairs); integer, so exact until the final divide.
  let twiceU = 0;
  let tp = 0;
  let fp = 0;
  // The curve's first point (0, 0) at +Infinity has J = 0; later points replace it only if strictly better.
  let bestJ = 0;
  let threshold = Infinity;
  let bestTp = 0;
  let bestFp = 0;
  let k = 0;
  while (k < m) {
    const s = scores[order[k]];
    let groupPos = 0;
    let groupNeg = 0;
    for (; k < m && scores[order[k]] === s; k++) {
      const i = order[k];
      const w = weights === undefined ? 1 : weights[i];
      if (labels[i] === 1) groupPos += w;
      else groupNeg += w;
    }
    if (groupPos + groupNeg === 0) continue;
    twiceU += groupNeg * (2 * tp + groupPos);
    tp += groupPos;
    fp += groupNeg;
    // Same float expression as tpr[i] - fpr[i] on sklearn's arrays, so argmax ties break identically.
    const j = tp / positives - fp / negatives;
    if (j > bestJ) {
      bestJ = j;
      threshold = s;
      bestTp = tp;
      bestFp = fp;
    }
  }
  return { positives, negatives, auc: twiceU / (2 * positives * negatives), threshold, tp: bestTp, fp: bestFp };
}

/** The metrics of a confusion matrix; a ratio with a zero denominator is 0 (sklearn's zero_division default). */
export function confusionMetrics(tp: number, fp: number, tn: number, fn: number): BinaryMetrics {
  const ratio = (num: number, den: number) => (den === 0 ? 0 : num / den);
  return {
    accuracy: ratio(tp + tn, tp + fp + tn + fn),
    sensitivity: ratio(tp, tp + fn),
    specificity: ratio(tn, tn + fp),
    precision: ratio(tp, tp + fp),
    f1: ratio(2 * tp, 2 * tp + fp + fn),
    tp,
    fp,
    tn,
    fn,
  };
}

function checkBinary(labels: ArrayLike<number>, scores: ArrayLike<number>, what: string): void {
  if (labels.length !== scores.length) {
    throw new EvalInputError(`${what}: ${labels.length} labels but ${scores.length} scores`);
  }
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] !== 0 && labels[i] !== 1) throw new EvalInputError(`${what}: label of sample ${i} is ${labels[i]}, not 0 or 1`);
    if (!Number.isFinite(scores[i])) throw new EvalInputError(`${what}: score of sample ${i} is ${scores[i]}, not finite`);
  }
}

/** Exact ROC AUC (Mann–Whitney U, ties counted ½; = sklearn's roc_auc_score). NaN when one class is present. */
export function rocAuc(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  checkBinary(labels, scores, 'rocAuc');
  return rocWalk(orderByScoreDesc(scores), labels, scores).auc;
}

/**
 * The ROC curve at every distinct score (sklearn's roc_curve with drop_intermediate=False), preceded by
 * (0, 0) at +Infinity. With one class present the undefined rate is NaN throughout, as in sklearn.
 */
export function rocCurve(labels: ArrayLike<number>, scores: ArrayLike<number>): RocCurve {
  checkBinary(labels, scores, 'rocCurve');
  const order = orderByScoreDesc(scores);
  let positives = 0;
  for (let i = 0; i < labels.length; i++) positives += labels[i];
  const negatives = labels.length - positives;
  const fpr = [0 / negatives];
  const tpr = [0 / positives];
  const thresholds = [Infinity];
  let tp = 0;
  let fp = 0;
  for (let k = 0; k < order.length; ) {
    const s = scores[order[k]];
    for (; k < order.length && scores[order[k]] === s; k++) {
      if (labels[order[k]] === 1) tp++;
      else fp++;
    }
    fpr.push(fp / negatives);
    tpr.push(tp / positives);
    thresholds.push(s);
  }
  return { fpr, tpr, thresholds };
}

/**
 * The ROC threshold maximizing TPR − FPR (Youden's J); the first maximum in descending-threshold order
 * wins, and +Infinity (the curve's first point, J = 0) is kept unless some threshold has J > 0. Predict
 * positive when score >= threshold. NaN when one class is present.
 */
export function youdenThreshold(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  checkBinary(labels, scores, 'youdenThreshold');
  return rocWalk(orderByScoreDesc(scores), labels, scores).threshold;
}

/** Accuracy, sensitivity, specificity, precision and F1 predicting positive when score >= threshold. */
export function binaryMetrics(labels: ArrayLike<number>, scores: ArrayLike<number>, threshold: number): BinaryMetrics {
  checkBinary(labels, scores, 'binaryMetrics');
  let tp = 0;
  let fp = 0;
  let tn = 0;
  let fn = 0;
  for (let i = 0; i < labels.length; i++) {
    const predicted = scores[i] >= threshold;
    if (labels[i] === 1) {
      if (predicted) tp++;
      else fn++;
    } else if (predicted) fp++;
    else tn++;
  }
  return confusionMetrics(tp, fp, tn, fn);
}

/** One label's column of a multi-label test set: the samples with a truth value, and their data. */
export interface LabelColumn {
  /** Sample indices (rows) whose truth is not NaN. */
  samples: Int32Array;
  /** Truth and score of every row (NaN truth where missing), indexed by row. */
  truth: Float64Array;
  scores: Float64Array;
}

/**
 * Checks a [sample][label] truth matrix (0, 1 or NaN) against a probability matrix of the same shape
 * (finite wherever truth is not NaN) and splits both into per-label columns.
 */
export function labelColumns(labelNames: readonly string[], truth: readonly (readonly number[])[], probs: readonly (readonly number[])[]): LabelColumn[] {
  const n = truth.length;
  const nLabels = labelNames.length;
  if (probs.length !== n) throw new EvalInputError(`truth has ${n} samples but probabilities have ${probs.length}`);
  for (let r = 0; r < n; r++) {
    if (truth[r].length !== nLabels) throw new EvalInputError(`truth row ${r} has ${truth[r].length} values for ${nLabels} labels`);
    if (probs[r].length !== nLabels) throw new EvalInputError(`probability row ${r} has ${probs[r].length} values for ${nLabels} labels`);
  }
  return labelNames.map((name, l) => {
    const t = new Float64Array(n);
    const s = new Float64Array(n);
    const samples: number[] = [];
    for (let r = 0; r < n; r++) {
      const y = truth[r][l];
      const p = probs[r][l];
      t[r] = y;
      s[r] = p;
      if (Number.isNaN(y)) continue;
      if (y !== 0 && y !== 1) throw new EvalInputError(`label ${JSON.stringify(name)}: truth of sample ${r} is ${y}, not 0, 1 or NaN`);
      if (!Number.isFinite(p)) throw new EvalInputError(`label ${JSON.stringify(name)}: probability of sample ${r} is ${p}, not finite`);
      samples.push(r);
    }
    return { samples: Int32Array.from(samples), truth: t, scores: s };
  });
}

/** The LabelMetrics of a finished walk (both classes present). */
export function walkMetrics(walk: RocWalk): LabelMetrics {
  const { positives, negatives, tp, fp } = walk;
  const m = confusionMetrics(tp, fp, negatives - fp, positives - tp);
  return {
    auc: walk.auc,
    threshold: walk.threshold,
    accuracy: m.accuracy,
    sensitivity: m.sensitivity,
    specificity: m.specificity,
    precision: m.precision,
    f1: m.f1,
  };
}

/** Macro averages over the labels that have metrics; null when none has. */
export function macroAverage(metrics: readonly (LabelMetrics | null)[]): MacroMetrics | null {
  const ok = metrics.filter((m): m is LabelMetrics => m !== null);
  if (ok.length === 0) return null;
  const mean = (key: keyof LabelMetrics) => ok.reduce((sum, m) => sum + m[key], 0) / ok.length;
  return {
    auc: mean('auc'),
    accuracy: mean('accuracy'),
    sensitivity: mean('sensitivity'),
    specificity: mean('specificity'),
    precision: mean('precision'),
    f1: mean('f1'),
    labels: ok.length,
  };
}

/**
 * True and false positives (weighted by `weights`, as in rocWalk) when predicting positive at
 * score >= threshold, over `samples`. A NaN threshold predicts nothing positive, as +Infinity does.
 */
export function countsAtThreshold(
  samples: ArrayLike<number>, labels: ArrayLike<number>, scores: ArrayLike<number>, threshold: number, weights?: ArrayLike<number>,
): { tp: number; fp: number } {
  let tp = 0;
  let fp = 0;
  for (let k = 0; k < samples.length; k++) {
    const i = samples[k];
    if (!(scores[i] >= threshold)) continue;
    const w = weights === undefined ? 1 : weights[i];
    if (labels[i] === 1) tp += w;
    else fp += w;
  }
  return { tp, fp };
}

/**
 * Per-label AUC and metrics at each label's Youden threshold, plus macro averages over the labels with
 * metrics. truth[sample][label] is 0, 1, or NaN (missing/ignored: the sample is left out for that label
 * only). `thresholds` (one per label, e.g. chosen on the validation split) replaces the Youden threshold
 * of these samples.
 */
export function evaluateLabels(
  labelNames: readonly string[], truth: readonly (readonly number[])[], probs: readonly (readonly number[])[], thresholds?: ArrayLike<number> | null,
): LabelReport {
  const columns = labelColumns(labelNames, truth, probs);
  if (thresholds && thresholds.length !== labelNames.length) {
    throw new EvalInputError(`${thresholds.length} thresholds for ${labelNames.length} labels`);
  }
  const labels = columns.map((col, l): LabelResult => {
    let walk = rocWalk(orderByScoreDesc(col.scores, col.samples), col.truth, col.scores);
    const ok = walk.positives > 0 && walk.negatives > 0;
    if (ok && thresholds) walk = { ...walk, threshold: thresholds[l], ...countsAtThreshold(col.samples, col.truth, col.scores, thresholds[l]) };
    return {
      label: labelNames[l],
      status: !ok ? 'single-class' : Number.isFinite(walk.threshold) ? 'ok' : 'no-informative-threshold',
      positives: walk.positives,
      negatives: walk.negatives,
      metrics: ok ? walkMetrics(walk) : null,
    };
  });
  return { labels, macro: macroAverage(labels.map((r) => r.metrics)) };
}
