// eval/bootstrap.ts: reproducible resampling, per-resample values against metrics computed directly on
// the gathered resample, the paired test's p-values in clear-cut cases, Benjamini–Hochberg on the
// textbook example, and labels with one class. Pure CPU.

import { describe, expect, it } from 'vitest';
import {
  benjaminiHochberg,
  bootstrapEvaluate,
  bootstrapIndices,
  compareModels,
  findPair,
  mulberry32,
  summarize,
} from '../../eval/bootstrap.js';
import { EvalInputError, rocAuc, youdenThreshold } from '../../eval/metrics.js';

/** A seeded test set: truth [n][labels] with prevalence 0.3, and per-model probabilities whose
 * separation from the truth is `signal` (0 = noise). Label "Rare" has 2 positives, "Single" none. */
function testSet(n: number, signals: Record<string, number>, seed = 3) {
  const random = mulberry32(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const labelNames = ['A', 'B', 'C', 'Rare', 'Single'];
  const truth = Array.from({ length: n }, (_, r) =>
    labelNames.map((name) => (name === 'Rare' ? (r === 5 || r === 17 ? 1 : 0) : name === 'Single' ? 0 : random() < 0.3 ? 1 : 0)),
  );
  const noise = truth.map((row) => row.map(() => gauss()));
  const probsByModel: Record<string, number[][]> = {};
  for (const [model, signal] of Object.entries(signals)) {
    probsByModel[model] = truth.map((row, r) =>
      row.map((y, l) => Math.round(100 / (1 + Math.exp(-(signal * (2 * y - 1) + noise[r][l])))) / 100),
    );
  }
  return { labelNames, truth, probsByModel };
}

describe('mulberry32 and bootstrapIndices', () => {
  it('is reproducible and uniform-looking', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const xs = Array.from({ length: 10000 }, () => a());
    expect(xs).toEqual(Array.from({ length: 10000 }, () => b()));
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(xs.reduce((s, x) => s + x, 0) / xs.length).toBeCloseTo(0.5, 1);
    expect(mulberry32(43)()).not.toBe(xs[0]);
  });

  it('draws resamples of n indices in [0, n), the same for the same seed', () => {
    const idx = bootstrapIndices(50, 20, 7);
    expect(idx).toHaveLength(20);
    for (const r of idx) {
      expect(r).toHaveLength(50);
      expect(r.every((i) => i >= 0 && i < 50)).toBe(true);
    }
    expect(bootstrapIndices(50, 20, 7)).toEqual(idx);
    expect(bootstrapIndices(50, 20, 8)).not.toEqual(idx);
    // With replacement: a resample of 50 nearly always repeats an index.
    expect(idx.some((r) => new Set(r).size < 50)).toBe(true);
  });
});

describe('summarize', () => {
  it('mean, sample std (ddof 1), numpy-style percentiles', () => {
    const s = summarize([4, 1, 3, 2, NaN])!;
    expect(s.mean).toBe(2.5);
    expect(s.std).toBeCloseTo(Math.sqrt(5 / 3), 14);
    // numpy.percentile([1, 2, 3, 4], [2.5, 97.5]) = [1.075, 3.925]
    expect(s.lo).toBeCloseTo(1.075, 14);
    expect(s.hi).toBeCloseTo(3.925, 14);
    expect(summarize([NaN])).toBeNull();
    expect(summarize([0.7])!.std).toBeNaN();
  });
});

describe('bootstrapEvaluate', () => {
  const { labelNames, truth, probsByModel } = testSet(200, { good: 1.5 });
  const probs = probsByModel.good;

  it('gives identical results for the same seed and different ones for another', () => {
    const a = bootstrapEvaluate(labelNames, truth, probs, { resamples: 200, seed: 11 });
    expect(bootstrapEvaluate(labelNames, truth, probs, { resamples: 200, seed: 11 })).toEqual(a);
    expect(bootstrapEvaluate(labelNames, truth, probs, { resamples: 200, seed: 12 }).labels[0].stats!.auc.mean).not.toBe(
      a.labels[0].stats!.auc.mean,
    );
    expect(a.seed).toBe(11);
    expect(a.resamples).toBe(200);
  });

  it('recomputes AUC and the Youden threshold on every resample (checked on the gathered resamples)', () => {
    const indices = bootstrapIndices(truth.length, 4, 5);
    const result = bootstrapEvaluate(labelNames, truth, probs, { indices });
    expect(result.seed).toBeNull();
    for (const l of [0, 1, 2]) {
      const aucs: number[] = [];
      const thresholds: number[] = [];
      for (const idx of indices) {
        const y = Array.from(idx, (i) => truth[i][l]);
        const s = Array.from(idx, (i) => probs[i][l]);
        aucs.push(rocAuc(y, s));
        thresholds.push(youdenThreshold(y, s));
      }
      const stats = result.labels[l].stats!;
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      const std = (xs: number[]) => Math.sqrt(xs.reduce((a, b) => a + (b - mean(xs)) ** 2, 0) / (xs.length - 1));
      expect(stats.auc.mean).toBeCloseTo(mean(aucs), 12);
      expect(stats.auc.std).toBeCloseTo(std(aucs), 12);
      expect(stats.threshold.mean).toBeCloseTo(mean(thresholds), 12);
      expect(stats.threshold.lo).toBeGreaterThanOrEqual(Math.min(...thresholds));
      expect(stats.threshold.hi).toBeLessThanOrEqual(Math.max(...thresholds));
    }
  });

  it('puts the point estimate inside the 95% interval', () => {
    const result = bootstrapEvaluate(labelNames, truth, probs, { resamples: 1000, seed: 0 });
    for (const l of [0, 1, 2]) {
      const point = result.point.labels[l].metrics!;
      const stats = result.labels[l].stats!;
      expect(result.labels[l].valid).toBe(1000);
      expect(stats.auc.lo).toBeLessThan(point.auc);
      expect(stats.auc.hi).toBeGreaterThan(point.auc);
      expect(Math.abs(stats.auc.mean - point.auc)).toBeLessThan(2 * stats.auc.std);
      for (const m of ['accuracy', 'sensitivity', 'specificity', 'precision', 'f1'] as const) {
        expect(stats[m].lo, m).toBeLessThanOrEqual(stats[m].mean);
        expect(stats[m].hi, m).toBeGreaterThanOrEqual(stats[m].mean);
      }
    }
    const meanAuc = result.meanAuc.stats!;
    expect(meanAuc.lo).toBeLessThan(result.point.macro!.auc);
    expect(meanAuc.hi).toBeGreaterThan(result.point.macro!.auc);
  });

  it('skips and counts the resamples where a label has one class', () => {
    const result = bootstrapEvaluate(labelNames, truth, probs, { resamples: 1000, seed: 0 });
    const rare = result.labels[3];
    expect(rare.status).toBe('ok');
    // P(neither of the 2 positives drawn) = (1 − 2/200)^200 ≈ 0.134.
    expect(rare.skipped).toBeGreaterThan(80);
    expect(rare.skipped).toBeLessThan(200);
    expect(rare.valid + rare.skipped).toBe(1000);
    expect(result.labels[4]).toEqual({ label: 'Single', status: 'single-class', valid: 0, skipped: 1000, uninformative: 0, stats: null });
    // The mean AUC needs all four 'ok' labels: it is valid exactly where Rare is.
    expect(result.meanAuc.valid).toBe(rare.valid);
    expect(result.point.macro!.labels).toBe(4);
  });

  it('rejects resamples of the wrong length or with indices out of range', () => {
    expect(() => bootstrapEvaluate(labelNames, truth, probs, { indices: [new Int32Array(10)] })).toThrow(EvalInputError);
    expect(() => bootstrapEvaluate(labelNames, truth, probs, { indices: [new Int32Array(200).fill(200)] })).toThrow(/index 200/);
  });
});

describe('compareModels', () => {
  const { labelNames, truth, probsByModel } = testSet(200, { strong: 2.5, weak: 0.2 });
  const cmp = compareModels(labelNames, truth, { ...probsByModel, copy: probsByModel.strong }, { resamples: 1000, seed: 0 });

  it('finds a clearly better model better (p ≈ 0) and not the other way (p ≈ 1)', () => {
    const better = findPair(cmp, 'strong', 'weak')!;
    const worse = findPair(cmp, 'weak', 'strong')!;
    for (const l of [0, 1, 2]) {
      expect(better.labels[l].p!).toBeLessThan(0.01);
      expect(better.labels[l].pAdjusted!).toBeLessThan(0.01);
      expect(worse.labels[l].p!).toBeGreaterThan(0.99);
      expect(better.labels[l].diff!.mean).toBeGreaterThan(0.2);
    }
    expect(better.meanAuc.p!).toBeLessThan(0.01);
    expect(worse.meanAuc.p!).toBeGreaterThan(0.99);
  });

  it('gives p = 1 for a model against itself (its AUC is never above its own)', () => {
    const self = findPair(cmp, 'strong', 'copy')!;
    for (const l of [0, 1, 2, 3]) {
      expect(self.labels[l].p).toBe(1);
      expect(self.labels[l].diff!.mean).toBe(0);
    }
    expect(self.meanAuc.p).toBe(1);
  });

  it('evaluates every model on the same resamples and reports one-class labels as null', () => {
    expect(cmp.pairs).toHaveLength(6);
    expect(cmp.results.strong.labels[3].valid).toBe(cmp.results.weak.labels[3].valid);
    const pair = findPair(cmp, 'strong', 'weak')!;
    expect(pair.labels[3].valid).toBe(cmp.results.strong.labels[3].valid);
    expect(pair.labels[4]).toMatchObject({ label: 'Single', valid: 0, p: null, pAdjusted: null, diff: null });
    // Each model's own bootstrap equals bootstrapEvaluate on the same seed.
    expect(cmp.results.weak).toEqual(bootstrapEvaluate(labelNames, truth, probsByModel.weak, { resamples: 1000, seed: 0 }));
  });

  it('with a baseline, tests only the pairs involving it', () => {
    const withBase = compareModels(labelNames, truth, probsByModel, { resamples: 50, seed: 1, baseline: 'weak' });
    expect(withBase.pairs.map((p) => `${p.a}>${p.b}`).sort()).toEqual(['strong>weak', 'weak>strong']);
    expect(() => compareModels(labelNames, truth, probsByModel, { resamples: 10, baseline: 'nope' })).toThrow(/baseline "nope"/);
  });
});

describe('benjaminiHochberg', () => {
  it('reproduces the Benjamini & Hochberg (1995) example, adjusted by hand', () => {
    const p = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.324, 0.4262, 0.5719, 0.6528, 0.759, 1.0];
    // min over k >= i of p_(k)·15/k.
    const expected = [
      0.0015, 0.003, 0.0095, 0.035625, 0.0603, 0.0298 * 15 / 7, 0.0298 * 15 / 7, 0.0645, 0.0765, 0.486, 0.4262 * 15 / 11,
      0.5719 * 15 / 12, 0.6528 * 15 / 13, 0.759 * 15 / 14, 1,
    ];
    const adjusted = benjaminiHochberg(p);
    adjusted.forEach((v, i) => expect(v).toBeCloseTo(expected[i], 12));
    // At FDR 0.05 the paper rejects the four smallest.
    expect(adjusted.filter((v) => v <= 0.05)).toHaveLength(4);
  });

  it('keeps the input order, passes NaN through and leaves it out of the family', () => {
    expect(benjaminiHochberg([0.01, NaN, 0.04, 0.03, 0.005])).toEqual([0.02, NaN, 0.04, 0.04, 0.02]);
    expect(benjaminiHochberg([])).toEqual([]);
    expect(benjaminiHochberg([0.3])).toEqual([0.3]);
  });

  it('is monotone in the raw p-values, never below them, and at most 1', () => {
    const random = mulberry32(9);
    for (let trial = 0; trial < 50; trial++) {
      const p = Array.from({ length: 1 + Math.floor(random() * 20) }, () => (random() < 0.2 ? 1 : random() ** 3));
      const adj = benjaminiHochberg(p);
      const order = p.map((_, i) => i).sort((a, b) => p[a] - p[b]);
      for (let k = 0; k < order.length; k++) {
        expect(adj[order[k]]).toBeGreaterThanOrEqual(p[order[k]]);
        expect(adj[order[k]]).toBeLessThanOrEqual(1);
        if (k > 0) expect(adj[order[k]]).toBeGreaterThanOrEqual(adj[order[k - 1]]);
      }
    }
  });
});
