// eval/metrics.ts against values worked out by hand, a brute-force pairwise AUC, and scikit-learn's
// output on seeded multi-label sets (test/fixtures/eval/sklearn.json, written by
// scripts/make-eval-fixtures.py; no Python needed here). Pure CPU.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../engine/prng.js';
import {
  binaryMetrics,
  evaluateLabels,
  EvalInputError,
  rocAuc,
  rocCurve,
  youdenThreshold,
} from '../../eval/metrics.js';
import { VitgpuError } from '../../engine/errors.js';

interface FixtureLabel {
  label: string;
  status: 'ok' | 'single-class';
  positives: number;
  negatives: number;
  auc?: number;
  fpr?: number[];
  tpr?: number[];
  thresholds?: number[];
  threshold?: number;
  accuracy?: number;
  sensitivity?: number;
  specificity?: number;
  precision?: number;
  f1?: number;
}

interface FixtureDataset {
  seed: number;
  labelNames: string[];
  truth: number[][];
  probs: number[][];
  labels: FixtureLabel[];
}

// The fixture writes +inf as "Infinity" and NaN as null (strict JSON).
const fixture = JSON.parse(readFileSync(new URL('../fixtures/eval/sklearn.json', import.meta.url), 'utf8'), (_key, value) =>
  value === 'Infinity' ? Infinity : value === null ? NaN : value,
) as { sklearn: string; datasets: FixtureDataset[] };

/** Seeded uniform [0, 1) for test inputs. */
const rng = mulberry32;

/** AUC by definition: the fraction of (positive, negative) pairs ranked correctly, ties counting ½. */
function bruteForceAuc(labels: number[], scores: number[]): number {
  let sum = 0;
  let pairs = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] !== 1) continue;
    for (let j = 0; j < labels.length; j++) {
      if (labels[j] !== 0) continue;
      pairs++;
      sum += scores[i] > scores[j] ? 1 : scores[i] === scores[j] ? 0.5 : 0;
    }
  }
  return sum / pairs;
}

function column(ds: FixtureDataset, l: number): { y: number[]; s: number[] } {
  const y: number[] = [];
  const s: number[] = [];
  ds.truth.forEach((row, r) => {
    if (Number.isNaN(row[l])) return;
    y.push(row[l]);
    s.push(ds.probs[r][l]);
  });
  return { y, s };
}

describe('hand-worked examples', () => {
  it('AUC, ROC curve and Youden threshold of the sklearn docs example', () => {
    const y = [0, 0, 1, 1];
    const s = [0.1, 0.4, 0.35, 0.8];
    expect(rocAuc(y, s)).toBe(0.75);
    expect(rocCurve(y, s)).toEqual({
      fpr: [0, 0, 0.5, 0.5, 1],
      tpr: [0, 0.5, 0.5, 1, 1],
      thresholds: [Infinity, 0.8, 0.4, 0.35, 0.1],
    });
    // J = 0, .5, 0, .5, 0: the first maximum in descending-threshold order.
    expect(youdenThreshold(y, s)).toBe(0.8);
  });

  it('counts a tied positive/negative pair as one half', () => {
    // Pairs (pos, neg): (.5,.5) = ½, (.5,.2) = 1, (.9,.5) = 1, (.9,.2) = 1 → 3.5 / 4.
    expect(rocAuc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9])).toBe(0.875);
    const curve = rocCurve([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]);
    expect(curve.thresholds).toEqual([Infinity, 0.9, 0.5, 0.2]);
    expect(curve.tpr).toEqual([0, 0.5, 1, 1]);
    expect(curve.fpr).toEqual([0, 0, 0.5, 1]);
  });

  it('gives 0.5 for all-tied scores, and the +Infinity threshold (nothing beats chance)', () => {
    const y = [1, 0, 0, 1, 1, 0, 0];
    const s = y.map(() => 0.3);
    expect(rocAuc(y, s)).toBe(0.5);
    expect(youdenThreshold(y, s)).toBe(Infinity);
    const m = binaryMetrics(y, s, Infinity);
    expect(m).toMatchObject({ tp: 0, fp: 0, tn: 4, fn: 3, sensitivity: 0, specificity: 1, precision: 0, f1: 0 });
    expect(m.accuracy).toBeCloseTo(4 / 7, 15);
  });

  it('gives 1 and 0 for perfect and reversed rankings', () => {
    expect(rocAuc([0, 0, 1, 1], [1, 2, 3, 4])).toBe(1);
    expect(rocAuc([1, 1, 0, 0], [1, 2, 3, 4])).toBe(0);
    expect(youdenThreshold([0, 0, 1, 1], [1, 2, 3, 4])).toBe(3);
  });

  it('is NaN with one class', () => {
    expect(rocAuc([1, 1, 1], [0.1, 0.5, 0.9])).toBeNaN();
    expect(youdenThreshold([0, 0], [0.1, 0.5])).toBeNaN();
    expect(rocCurve([1, 1], [0.2, 0.4]).fpr.every(Number.isNaN)).toBe(true);
  });

  it('binary metrics at a threshold (score >= threshold is positive)', () => {
    // pred = [1, 0, 1, 0, 1] → tp 2, fn 1, fp 1, tn 1.
    const m = binaryMetrics([1, 1, 0, 0, 1], [0.9, 0.4, 0.6, 0.1, 0.7], 0.6);
    expect(m).toMatchObject({ tp: 2, fn: 1, fp: 1, tn: 1 });
    expect(m.accuracy).toBeCloseTo(3 / 5, 15);
    expect(m.sensitivity).toBeCloseTo(2 / 3, 15);
    expect(m.specificity).toBeCloseTo(1 / 2, 15);
    expect(m.precision).toBeCloseTo(2 / 3, 15);
    expect(m.f1).toBeCloseTo(2 / 3, 15);
  });

  it('defines 0/0 as 0', () => {
    // No positives at all and none predicted.
    const m = binaryMetrics([0, 0, 0], [0.1, 0.2, 0.3], 0.5);
    expect(m).toMatchObject({ sensitivity: 0, precision: 0, f1: 0, specificity: 1, accuracy: 1 });
  });

  it('matches the pairwise definition on random scores with many ties', () => {
    const random = rng(7);
    for (let trial = 0; trial < 20; trial++) {
      const n = 5 + Math.floor(random() * 120);
      const y = Array.from({ length: n }, () => (random() < 0.3 ? 1 : 0));
      y[0] = 1;
      y[1] = 0;
      const s = Array.from({ length: n }, () => Math.round(random() * 10) / 10);
      expect(rocAuc(y, s)).toBeCloseTo(bruteForceAuc(y, s), 12);
    }
  });

  it('rejects labels other than 0/1, non-finite scores and length mismatches', () => {
    expect(() => rocAuc([0, 2], [0.1, 0.2])).toThrow(EvalInputError);
    expect(() => rocAuc([0, 1], [0.1, NaN])).toThrow(/sample 1/);
    expect(() => binaryMetrics([0, 1], [0.1], 0.5)).toThrow(EvalInputError);
    expect(() => youdenThreshold([0, 1], [Infinity, 0])).toThrow(VitgpuError);
  });
});

describe(`against scikit-learn ${fixture.sklearn}`, () => {
  for (const ds of fixture.datasets) {
    describe(`dataset seed ${ds.seed}`, () => {
      ds.labelNames.forEach((name, l) => {
        const ref = ds.labels[l];
        it(`${name}: AUC, ROC curve, Youden threshold and metrics at it`, () => {
          const { y, s } = column(ds, l);
          expect(y.filter((v) => v === 1).length).toBe(ref.positives);
          expect(y.length - ref.positives).toBe(ref.negatives);
          if (ref.status === 'single-class') {
            expect(rocAuc(y, s)).toBeNaN();
            expect(youdenThreshold(y, s)).toBeNaN();
            return;
          }
          expect(rocAuc(y, s)).toBeCloseTo(ref.auc!, 12);
          const curve = rocCurve(y, s);
          expect(curve.thresholds).toEqual(ref.thresholds);
          expect(curve.fpr.length).toBe(ref.fpr!.length);
          curve.fpr.forEach((v, i) => expect(v).toBeCloseTo(ref.fpr![i], 14));
          curve.tpr.forEach((v, i) => expect(v).toBeCloseTo(ref.tpr![i], 14));
          const threshold = youdenThreshold(y, s);
          expect(threshold).toBe(ref.threshold);
          const m = binaryMetrics(y, s, threshold);
          for (const key of ['accuracy', 'sensitivity', 'specificity', 'precision', 'f1'] as const) {
            expect(m[key], key).toBeCloseTo(ref[key]!, 12);
          }
        });
      });

      it('evaluateLabels: per-label report, NaN truths left out, macro averages over the ok labels', () => {
        const report = evaluateLabels(ds.labelNames, ds.truth, ds.probs);
        const ok = ds.labels.filter((r) => r.status === 'ok');
        report.labels.forEach((r, l) => {
          const ref = ds.labels[l];
          expect(r.label).toBe(ref.label);
          // Both classes present but no threshold beats chance (sklearn's argmax at +inf): its own status.
          expect(r.status).toBe(ref.status === 'ok' && !Number.isFinite(ref.threshold!) ? 'no-informative-threshold' : ref.status);
          expect(r.positives).toBe(ref.positives);
          expect(r.negatives).toBe(ref.negatives);
          if (ref.status === 'single-class') {
            expect(r.metrics).toBeNull();
            return;
          }
          expect(r.metrics!.threshold).toBe(ref.threshold);
          for (const key of ['auc', 'accuracy', 'sensitivity', 'specificity', 'precision', 'f1'] as const) {
            expect(r.metrics![key], `${ref.label} ${key}`).toBeCloseTo(ref[key]!, 12);
          }
        });
        expect(report.macro!.labels).toBe(ok.length);
        for (const key of ['auc', 'accuracy', 'sensitivity', 'specificity', 'precision', 'f1'] as const) {
          expect(report.macro![key], key).toBeCloseTo(ok.reduce((sum, r) => sum + r[key]!, 0) / ok.length, 12);
        }
      });
    });
  }
});

describe('evaluateLabels', () => {
  it('leaves out NaN truths per label and reports a one-class label with null metrics', () => {
    const truth = [
      [1, 0, NaN],
      [0, 0, 1],
      [NaN, 0, 0],
      [1, NaN, 1],
    ];
    const probs = [
      [0.9, 0.2, NaN],
      [0.1, 0.3, 0.8],
      [NaN, 0.4, 0.3],
      [0.8, NaN, 0.4],
    ];
    const report = evaluateLabels(['a', 'b', 'c'], truth, probs);
    expect(report.labels[0]).toMatchObject({ status: 'ok', positives: 2, negatives: 1 });
    expect(report.labels[0].metrics).toMatchObject({ auc: 1, threshold: 0.8, accuracy: 1, f1: 1 });
    expect(report.labels[1]).toEqual({ label: 'b', status: 'single-class', positives: 0, negatives: 3, metrics: null });
    expect(report.labels[2].metrics!.auc).toBe(1);
    expect(report.labels[2].metrics!.threshold).toBe(0.4);
    expect(report.macro!.labels).toBe(2);
    expect(report.macro!.auc).toBe(1);
  });

  it('has no macro average when no label has two classes', () => {
    expect(evaluateLabels(['a'], [[1], [1]], [[0.2], [0.3]]).macro).toBeNull();
  });

  it('names the row and label at fault', () => {
    expect(() => evaluateLabels(['a', 'b'], [[1, 0], [0]], [[0.1, 0.2], [0.3, 0.4]])).toThrow(/truth row 1/);
    expect(() => evaluateLabels(['a', 'b'], [[1, 0], [0, 0.5]], [[0.1, 0.2], [0.3, 0.4]])).toThrow(/"b".*sample 1/);
    expect(() => evaluateLabels(['a'], [[1], [0]], [[0.1], [NaN]])).toThrow(/probability of sample 1/);
    expect(() => evaluateLabels(['a'], [[1], [0]], [[0.1]])).toThrow(EvalInputError);
  });
});
