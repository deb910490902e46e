// datasets/subset.ts: nested, stratified training subsets. Properties are checked by counting on the
// output (nesting, proportions per stratum, positives per label), not against earlier output.

import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../engine/prng.js';
import { checkFraction, subsetRanking, trainSubset, withTrainSubset } from '../../datasets/subset.js';

const LABELS = ['common', 'medium', 'rare', 'very_rare'];
const PREVALENCE = [0.4, 0.15, 0.03, 0.004];

function makeSamples(n: number, seed: number): { labels: Float32Array; id: number; split: 'train' | 'valid' | 'test' }[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, (_, id) => ({
    id,
    split: id % 10 === 8 ? 'valid' : id % 10 === 9 ? 'test' : 'train',
    labels: Float32Array.from(PREVALENCE, (p) => (rand() < p ? 1 : 0)),
  }));
}

/** The stratum the file comment defines: the rarest positive label, or LABELS.length for none. */
function stratumOf(labels: ArrayLike<number>, prevalence: number[]): number {
  let best = LABELS.length;
  for (let j = 0; j < LABELS.length; j++) if (labels[j] === 1 && (best === LABELS.length || prevalence[j] < prevalence[best])) best = j;
  return best;
}

describe('trainSubset', () => {
  const samples = makeSamples(3000, 1);
  const counts = LABELS.map((_, j) => samples.filter((s) => s.labels[j] === 1).length);

  it('subsets of one seed are nested: 1% ⊂ 10% ⊂ 50% ⊂ 100%', () => {
    for (const seed of [0, 1, 7]) {
      const sets = [0.01, 0.1, 0.5, 1].map((fraction) => new Set(trainSubset(samples, LABELS, { fraction, seed }).samples.map((s) => s.id)));
      for (let k = 0; k + 1 < sets.length; k++) {
        for (const id of sets[k]) expect(sets[k + 1].has(id), `seed ${seed}: ${id} in subset ${k} but not ${k + 1}`).toBe(true);
        expect(sets[k].size).toBeLessThan(sets[k + 1].size);
      }
      expect(sets[3].size).toBe(samples.length);
    }
  });

  it('sizes are round(F · N) plus what the rare labels needed, and every label keeps positives', () => {
    for (const fraction of [0.002, 0.01, 0.1]) {
      const sub = trainSubset(samples, LABELS, { fraction, seed: 3, minPositives: 2 });
      expect(sub.target).toBe(Math.round(fraction * samples.length));
      expect(sub.samples.length).toBe(sub.target + sub.added);
      LABELS.forEach((label, j) => {
        const pos = sub.samples.filter((s) => s.labels[j] === 1).length;
        expect(pos, `${label} at ${fraction}`).toBeGreaterThanOrEqual(Math.min(2, counts[j]));
        expect(sub.counts[j]).toEqual({ label, positives: pos, available: counts[j] });
      });
      expect(sub.tooFew).toEqual([]);
    }
    // Without the minimum, a 0.2% subset (6 rows) of this split misses the very rare label.
    const bare = trainSubset(samples, LABELS, { fraction: 0.002, seed: 3, minPositives: 0 });
    expect(bare.added).toBe(0);
    expect(bare.samples).toHaveLength(6);
  });

  it('is stratified: each stratum is within one or two rows of its proportional share', () => {
    const prevalence = counts.map((c) => c / samples.length);
    const strata = samples.map((s) => stratumOf(s.labels, prevalence));
    const sizes = Array.from({ length: LABELS.length + 1 }, (_, k) => strata.filter((x) => x === k).length);
    for (const fraction of [0.05, 0.2, 0.6]) {
      const sub = trainSubset(samples, LABELS, { fraction, seed: 11, minPositives: 0 });
      for (let k = 0; k < sizes.length; k++) {
        const got = sub.indices.filter((i) => strata[i] === k).length;
        expect(Math.abs(got - (sub.samples.length * sizes[k]) / samples.length), `stratum ${k} at ${fraction}`).toBeLessThanOrEqual(2);
      }
    }
  });

  it('is deterministic per seed, differs between seeds, and keeps the input order', () => {
    const a = trainSubset(samples, LABELS, { fraction: 0.1, seed: 5 }).indices;
    expect(trainSubset(samples, LABELS, { fraction: 0.1, seed: 5 }).indices).toEqual(a);
    expect(trainSubset(samples, LABELS, { fraction: 0.1, seed: 6 }).indices).not.toEqual(a);
    expect([...a].sort((x, y) => x - y)).toEqual(a);
    const ranking = subsetRanking(samples.map((s) => s.labels), LABELS.length, 5);
    expect([...ranking].sort((x, y) => x - y)).toEqual(samples.map((_, i) => i));
  });

  it('reports labels the split cannot give enough positives', () => {
    const few = samples.slice(0, 200);
    const available = few.filter((s) => s.labels[3] === 1).length;
    const sub = trainSubset(few, LABELS, { fraction: 0.05, seed: 0, minPositives: available + 1 });
    expect(sub.tooFew.map((c) => c.label)).toContain('very_rare');
    expect(sub.tooFew.find((c) => c.label === 'very_rare')).toEqual({ label: 'very_rare', positives: available, available });
  });

  it('rejects fractions outside (0, 1]', () => {
    for (const f of [0, -0.1, 1.01, NaN, Infinity]) expect(() => trainSubset(samples, LABELS, { fraction: f, seed: 0 })).toThrow(/\(0, 1\]/);
    expect(() => checkFraction(1)).not.toThrow();
  });

  it('withTrainSubset leaves the valid and test rows alone', () => {
    const { samples: out, subset } = withTrainSubset(samples, LABELS, { fraction: 0.1, seed: 2 });
    const split = (xs: typeof samples, s: string) => xs.filter((x) => x.split === s).map((x) => x.id);
    expect(split(out, 'valid')).toEqual(split(samples, 'valid'));
    expect(split(out, 'test')).toEqual(split(samples, 'test'));
    expect(split(out, 'train')).toEqual(subset.samples.map((s) => s.id));
    expect(split(out, 'train').length).toBeLessThan(split(samples, 'train').length / 5);
  });
});
