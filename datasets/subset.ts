// Nested, stratified subsets of a training split, browser-safe and deterministic given a seed.
//
// The study trains on 1%, 10% and 100% of each training split (PAPER.md, "open questions"). For the
// comparison to mean anything the subsets must be nested (the 1% images are among the 10% ones, for
// the same seed) and every label must keep positives. Both follow from one construction:
//
// 1. Each sample gets a stratum: its rarest positive label (by prevalence in the full split), or
//    "no finding" when it has no positive. Rare findings so get their own strata instead of being
//    swamped by the common ones.
// 2. Within each stratum the samples are shuffled with mulberry32(seed). The k-th sample of a stratum
//    of size n gets the key (k + u) / n, with one u in [0, 1) drawn per stratum; sorting every sample
//    by key interleaves the strata in proportion (systematic stratified sampling). This ranking depends
//    on the seed and the data only, not on the fraction.
// 3. A fraction F takes the first round(F · N) samples of the ranking, so subsets of one seed are
//    prefixes of one order and nested by construction.
// 4. Every label's first `minPositives` positives in ranking order join the subset (or all it has).
//    A prefix that already holds that many positives of a label holds exactly these, so only labels
//    short of positives grow the subset; and since these samples do not depend on the fraction, the
//    subsets stay nested.
//
// F = 1 returns the split unchanged, whatever the seed.

import { mulberry32 } from '../engine/prng.js';
import { DatasetError } from './errors.js';

export interface SubsetOptions {
  /** In (0, 1]. */
  fraction: number;
  /** Seed of the ranking; subsets of one seed are nested. */
  seed: number;
  /** Positives every label keeps where the split has them (default 1). */
  minPositives?: number;
}

export interface LabelCount {
  label: string;
  /** Positives in the subset. */
  positives: number;
  /** Positives in the full split. */
  available: number;
}

export interface Subset<S> {
  samples: S[];
  /** Indices into the input, ascending (the input's order is kept). */
  indices: number[];
  /** round(fraction · N) before positives were added. */
  target: number;
  /** Samples added to give a label its positives. */
  added: number;
  counts: LabelCount[];
  /** Labels with fewer than minPositives positives: the split has no more to give. */
  tooFew: LabelCount[];
}

/** Checks a training fraction: a finite number in (0, 1]. */
export function checkFraction(fraction: number, what = 'training fraction'): void {
  if (!(Number.isFinite(fraction) && fraction > 0 && fraction <= 1)) {
    throw new DatasetError(undefined, `${what} must be in (0, 1], got ${fraction}`);
  }
}

function isPositive(v: number): boolean {
  return v === 1;
}

/** The order in which samples enter subsets of growing size, for one seed (see the file comment). */
export function subsetRanking(labels: readonly ArrayLike<number>[], labelCount: number, seed: number): number[] {
  const n = labels.length;
  const prevalence = new Float64Array(labelCount);
  for (const row of labels) for (let j = 0; j < labelCount; j++) if (isPositive(row[j])) prevalence[j]++;
  // Stratum: the rarest positive label (ties to the lower index); labelCount stands for "no positive".
  const strata: number[][] = Array.from({ length: labelCount + 1 }, () => []);
  labels.forEach((row, i) => {
    let best = labelCount;
    for (let j = 0; j < labelCount; j++) {
      if (isPositive(row[j]) && (best === labelCount || prevalence[j] < prevalence[best])) best = j;
    }
    strata[best].push(i);
  });
  const random = mulberry32(seed);
  const keyed: { key: number; stratum: number; index: number }[] = [];
  strata.forEach((members, stratum) => {
    // Fisher–Yates with the seeded generator.
    for (let k = members.length - 1; k > 0; k--) {
      const r = Math.floor(random() * (k + 1));
      [members[k], members[r]] = [members[r], members[k]];
    }
    const u = random();
    members.forEach((index, k) => keyed.push({ key: (k + u) / members.length, stratum, index }));
  });
  keyed.sort((a, b) => a.key - b.key || a.stratum - b.stratum);
  if (keyed.length !== n) throw new Error('subsetRanking: lost a sample');
  return keyed.map((k) => k.index);
}

/**
 * The subset of `samples` (one split) for a fraction and seed: stratified by rarest positive label,
 * nested across fractions of one seed, every label keeping up to `minPositives` positives.
 */
export function trainSubset<S extends { labels: ArrayLike<number> }>(samples: readonly S[], labelNames: readonly string[], opts: SubsetOptions): Subset<S> {
  checkFraction(opts.fraction);
  const minPositives = opts.minPositives ?? 1;
  if (!Number.isInteger(minPositives) || minPositives < 0) throw new DatasetError(undefined, `minimum positives per label must be a non-negative integer, got ${minPositives}`);
  const n = samples.length;
  const L = labelNames.length;
  const available = labelNames.map((_, j) => samples.reduce((c, s) => c + (isPositive(s.labels[j]) ? 1 : 0), 0));
  const countsOf = (indices: readonly number[]) => labelNames.map((label, j) => ({
    label,
    positives: indices.reduce((c, i) => c + (isPositive(samples[i].labels[j]) ? 1 : 0), 0),
    available: available[j],
  }));
  const finish = (indices: number[], target: number, added: number): Subset<S> => {
    indices.sort((a, b) => a - b);
    const counts = countsOf(indices);
    return { samples: indices.map((i) => samples[i]), indices, target, added, counts, tooFew: counts.filter((c) => c.positives < minPositives) };
  };
  if (opts.fraction === 1) return finish(Array.from({ length: n }, (_, i) => i), n, 0);

  const ranking = subsetRanking(samples.map((s) => s.labels), L, opts.seed);
  const target = Math.min(n, Math.round(opts.fraction * n));
  const chosen = new Set(ranking.slice(0, target));
  let added = 0;
  for (let j = 0; j < L; j++) {
    // The label's first minPositives positives in ranking order. A prefix with that many positives of
    // the label already holds exactly these, so only labels short of positives grow the subset.
    let seen = 0;
    for (let k = 0; k < n && seen < minPositives; k++) {
      const i = ranking[k];
      if (!isPositive(samples[i].labels[j])) continue;
      seen++;
      if (!chosen.has(i)) {
        chosen.add(i);
        added++;
      }
    }
  }
  return finish([...chosen], target, added);
}

/** "cardiomegaly 2 of 40, nodule 0 of 0": the labels a subset could not give enough positives. */
export function describeTooFew(counts: readonly LabelCount[]): string {
  return counts.map((c) => `${c.label} ${c.positives} (the split has ${c.available})`).join(', ');
}

/**
 * `samples` with the training split replaced by its subset; valid and test rows are kept as they are.
 * The result keeps the input's order.
 */
export function withTrainSubset<S extends { split: string; labels: ArrayLike<number> }>(
  samples: readonly S[], labelNames: readonly string[], opts: SubsetOptions,
): { samples: S[]; subset: Subset<S> } {
  const trainIdx: number[] = [];
  samples.forEach((s, i) => {
    if (s.split === 'train') trainIdx.push(i);
  });
  const subset = trainSubset(trainIdx.map((i) => samples[i]), labelNames, opts);
  const keep = new Set(subset.indices.map((k) => trainIdx[k]));
  return { samples: samples.filter((s, i) => s.split !== 'train' || keep.has(i)), subset };
}
