// Thresholds chosen on the validation split (thresholdPolicy 'valid') against a hand computation;
// resamples without an informative Youden threshold counted and left out of the threshold metrics;
// tables that never print NaN or Infinity, and metrics.json without nulls under "status": "ok".

import { describe, expect, it } from 'vitest';
import { bootstrapEvaluate, compareModels, mulberry32 } from '../../eval/bootstrap.js';
import { markdownTable, youdenTable } from '../../eval/report.js';
import { youdenThresholds } from '../../eval/thresholds.js';

const col = (xs: number[]) => xs.map((x) => [x]);

// Validation split, one label. Sorted by score: 0.9 (1), 0.7 (0), 0.6 (1), 0.4 (1), 0.2 (0), 0.1 (0);
// TPR − FPR along it: 1/3, 0, 1/3, 2/3, 1/3, 0: Youden's threshold is 0.4.
const VALID_TRUTH = col([1, 1, 0, 0, 1, 0]);
const VALID_PROBS = col([0.9, 0.6, 0.7, 0.2, 0.4, 0.1]);
// Test split. At 0.4: tp 3 (0.5, 0.8, 0.42), fp 2 (0.45, 0.6), fn 1 (0.3), tn 2 (0.1, 0.35). Its own
// Youden threshold would be 0.8 (J = 1/4 first reached there).
const TEST_TRUTH = col([1, 0, 1, 0, 1, 0, 0, 1]);
const TEST_PROBS = col([0.5, 0.45, 0.3, 0.1, 0.8, 0.35, 0.6, 0.42]);

describe("thresholdPolicy 'valid'", () => {
  it('picks the Youden threshold per label on the validation split', () => {
    expect(Array.from(youdenThresholds(['x'], VALID_TRUTH, VALID_PROBS))).toEqual([0.4]);
    // One class: NaN; no threshold beats chance: +Infinity.
    expect(Array.from(youdenThresholds(['one', 'anti'], [[1, 1], [1, 0]], [[0.3, 0.1], [0.2, 0.9]]))).toEqual([NaN, Infinity]);
  });

  it('applies it to the test split and keeps it fixed in every resample (hand-computed)', () => {
    const thresholds = youdenThresholds(['x'], VALID_TRUTH, VALID_PROBS);
    // Resample 1: every image once. Resample 2: images 0, 0, 1, 3, 4, 4, 7, 7: tp 6, fp 1, tn 1, fn 0.
    const indices = [Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7]), Int32Array.from([0, 0, 1, 3, 4, 4, 7, 7])];
    const r = bootstrapEvaluate(['x'], TEST_TRUTH, TEST_PROBS, { indices, thresholds, thresholdPolicy: 'valid' });
    expect(r.thresholdPolicy).toBe('valid');
    expect(r.thresholds).toEqual([0.4]);
    const point = r.point.labels[0].metrics!;
    expect(point.threshold).toBe(0.4);
    expect([point.accuracy, point.sensitivity, point.specificity, point.precision, point.f1]).toEqual([5 / 8, 3 / 4, 2 / 4, 3 / 5, 6 / 9]);
    const st = r.labels[0].stats!;
    expect(r.labels[0].status).toBe('ok');
    expect(st.threshold).toEqual({ mean: 0.4, std: 0, lo: 0.4, hi: 0.4 });
    expect(st.sensitivity!.mean).toBe((3 / 4 + 1) / 2);
    expect(st.sensitivity!.std).toBeCloseTo(0.25 / Math.SQRT2, 15);
    expect(st.specificity!.mean).toBe(0.5);
    expect(st.accuracy!.mean).toBe((5 / 8 + 7 / 8) / 2);
    expect(st.precision!.mean).toBeCloseTo((3 / 5 + 6 / 7) / 2, 15);
    expect(st.f1!.mean).toBeCloseTo((6 / 9 + 12 / 13) / 2, 15);
    // The AUC does not depend on the threshold policy.
    const test = bootstrapEvaluate(['x'], TEST_TRUTH, TEST_PROBS, { indices });
    expect(test.thresholdPolicy).toBe('test');
    expect(test.point.labels[0].metrics!.threshold).toBe(0.8);
    expect(r.labels[0].stats!.auc).toEqual(test.labels[0].stats!.auc);
  });

  it('compareModels takes one set of thresholds per model and says which policy it used', () => {
    const probs = { a: TEST_PROBS, b: TEST_PROBS.map(([p]) => [1 - p]) };
    const cmp = compareModels(['x'], TEST_TRUTH, probs, { resamples: 50, thresholds: { a: [0.4], b: [0.5] }, thresholdPolicy: 'valid' });
    expect(cmp.thresholdPolicy).toBe('valid');
    expect(cmp.results.a.point.labels[0].metrics!.sensitivity).toBe(3 / 4);
    expect(cmp.results.b.thresholds).toEqual([0.5]);
    const table = youdenTable(cmp);
    expect(table).toContain('## a: metrics at the Youden threshold (chosen on the validation split, fixed in every resample), %');
    expect(table).toContain('| x | 0.4000 |');
    expect(table).toContain("Threshold: per label, the one maximizing Youden's J (TPR − FPR) on the validation split's predictions");
    expect(() => compareModels(['x'], TEST_TRUTH, probs, { thresholds: { a: [0.4] }, thresholdPolicy: 'valid' })).toThrow(/validation thresholds for "b"/);
    expect(() => bootstrapEvaluate(['x'], TEST_TRUTH, TEST_PROBS, { thresholdPolicy: 'valid' })).toThrow(/needs the thresholds/);
    expect(() => bootstrapEvaluate(['x'], TEST_TRUTH, TEST_PROBS, { thresholds: [0.4], thresholdPolicy: 'test' })).toThrow(/recomputes/);
  });
});

describe('resamples without an informative threshold', () => {
  // Full set: 0.9 (1), 0.8 (0), 0.2 (0), 0.1 (1): threshold 0.9. Resample 2 (images 1, 1, 2, 3) holds
  // 0.8 (0) twice, 0.2 (0), 0.1 (1): J <= 0 everywhere, threshold +Infinity. Resample 3 (0, 0, 1, 2): 0.9.
  const truth = col([1, 0, 1, 0]);
  const probs = col([0.9, 0.8, 0.1, 0.2]);
  const indices = [Int32Array.from([0, 1, 2, 3]), Int32Array.from([1, 1, 2, 3]), Int32Array.from([0, 0, 1, 2])];

  it('are counted, count for the AUC, and are left out of the threshold and the metrics at it', () => {
    const r = bootstrapEvaluate(['x'], truth, probs, { indices });
    const l = r.labels[0];
    expect([l.status, l.valid, l.uninformative]).toEqual(['ok', 3, 1]);
    expect(l.stats!.auc.mean).toBeCloseTo((1 / 2 + 0 + 2 / 3) / 3, 15);
    expect(l.stats!.threshold).toEqual({ mean: 0.9, std: 0, lo: 0.9, hi: 0.9 });
    expect(l.stats!.sensitivity!.mean).toBeCloseTo((1 / 2 + 2 / 3) / 2, 15);
    const table = youdenTable(compareModels(['x'], truth, { m: probs }, { indices }));
    expect(table).toContain("x: 1 of 3 resamples had no informative threshold (Youden's J <= 0 at every cut); the metrics summarize the other 2.");
    expect(table).not.toMatch(/NaN|Infinity/);
  });

  it('a model that never beats chance gets its own status and no threshold, not Infinity', () => {
    const anti = col([0.1, 0.9, 0.2, 0.8]);
    const r = bootstrapEvaluate(['x'], truth, anti, { indices });
    expect(r.point.labels[0].status).toBe('no-informative-threshold');
    expect([r.labels[0].status, r.labels[0].uninformative, r.labels[0].stats!.threshold]).toEqual(['no-informative-threshold', 3, null]);
    const table = youdenTable(compareModels(['x'], truth, { m: anti }, { indices }));
    expect(table).toContain('| x | none (no threshold beats chance) | n/a | n/a | n/a | n/a | n/a |');
  });
});

/** Every object with "status": "ok" in metrics.json holds no null below it (down to objects with their own status). */
function nullsUnderOk(value: unknown, path = '$', underOk = false, out: string[] = []): string[] {
  if (value === null) {
    if (underOk) out.push(path);
    return out;
  }
  if (typeof value !== 'object') return out;
  const obj = value as Record<string, unknown>;
  const ok = 'status' in obj && !Array.isArray(obj) ? obj.status === 'ok' : underOk;
  for (const [k, v] of Object.entries(obj)) nullsUnderOk(v, `${path}.${k}`, ok, out);
  return out;
}

describe('degenerate evaluations', () => {
  const random = mulberry32(7);
  const truth = Array.from({ length: 60 }, (_, i) => [random() < 0.4 ? 1 : 0, i === 3 ? 1 : 0, 0]);
  const probsByModel = {
    good: truth.map((row) => row.map((y) => 0.6 * y + 0.7 * random())),
    anti: truth.map((row) => row.map((y) => 0.6 * (1 - y) + 0.7 * random())),
  };

  for (const resamples of [1, 2, 1000]) {
    it(`--resamples ${resamples}: no NaN or Infinity in any table, no null under "status": "ok" in metrics.json`, () => {
      const cmp = compareModels(['common', 'one-positive', 'never'], truth, probsByModel, { resamples, seed: 0, baseline: 'anti' });
      const text = markdownTable(cmp) + youdenTable(cmp);
      expect(text).not.toMatch(/NaN|Infinity/);
      const json = JSON.parse(JSON.stringify(cmp));
      expect(nullsUnderOk(json)).toEqual([]);
      if (resamples === 1) {
        expect(cmp.results.good.labels[0].status).toBe('too-few-resamples');
        expect(cmp.results.good.meanAuc.status).toBe('too-few-resamples');
        expect(text).toMatch(/\| common \| \d+\.\d\d \| \d+\.\d\d \|/); // the mean alone
      }
    });
  }

  it('the table says how many resamples each label used', () => {
    const cmp = compareModels(['common', 'one-positive', 'never'], truth, probsByModel, { resamples: 1000, seed: 0, baseline: 'anti' });
    const used = cmp.results.anti.labels[1].valid;
    expect(used).toBeGreaterThan(500);
    expect(used).toBeLessThan(700); // P(the one positive drawn) = 1 − (59/60)^60 ≈ 0.64
    expect(markdownTable(cmp)).toContain(`resamples used (those in which the label has both classes): common 1000, one-positive ${used}, the Mean row ${used} of 1000`);
  });
});
