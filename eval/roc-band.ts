// The 95% bootstrap band of a ROC curve, browser-safe: in each resample of the test set (the same
// indices the AUC intervals use) the curve is walked once and its sensitivity read off at a fixed grid
// of 1 − specificity values (vertical averaging, Fawcett 2006); the band is the 2.5th and 97.5th
// percentile at each grid point. Resamples with one class only are skipped, as in eval/bootstrap.ts.

import { orderByScoreDesc } from './metrics.js';
import { summarize } from './bootstrap.js';

export interface RocBand {
  /** Grid of false-positive rates, 0 to 1. */
  fpr: number[];
  lo: number[];
  hi: number[];
  /** Resamples that had both classes. */
  valid: number;
}

/**
 * Sensitivity of the curve at each grid point: linear between the curve's vertices (one per distinct
 * score), the highest point where the curve rises vertically. `counts` weights every row (a resample).
 */
export function tprOnGrid(order: ArrayLike<number>, truth: ArrayLike<number>, scores: ArrayLike<number>, counts: ArrayLike<number> | null, grid: readonly number[]): number[] | null {
  let positives = 0;
  let negatives = 0;
  for (let k = 0; k < order.length; k++) {
    const i = order[k];
    const w = counts ? counts[i] : 1;
    if (truth[i] === 1) positives += w;
    else negatives += w;
  }
  if (positives === 0 || negatives === 0) return null;
  const out = new Array<number>(grid.length).fill(0);
  let g = 0;
  let x0 = 0;
  let y0 = 0;
  let tp = 0;
  let fp = 0;
  for (let k = 0; k < order.length; ) {
    const s = scores[order[k]];
    for (; k < order.length && scores[order[k]] === s; k++) {
      const i = order[k];
      const w = counts ? counts[i] : 1;
      if (truth[i] === 1) tp += w;
      else fp += w;
    }
    const x1 = fp / negatives;
    const y1 = tp / positives;
    if (x1 > x0) {
      // Points at x0 read the top of any vertical rise there (y0, its last height); points at x1 wait
      // for the rises that may follow at x1.
      for (; g < grid.length && grid[g] < x1; g++) out[g] = grid[g] <= x0 ? y0 : y0 + ((y1 - y0) * (grid[g] - x0)) / (x1 - x0);
      x0 = x1;
    }
    y0 = y1;
  }
  for (; g < grid.length && grid[g] <= x0; g++) out[g] = y0;
  while (g < grid.length) out[g++] = 1;
  return out;
}

/**
 * The band of one label's curve: `truth` (0, 1 or NaN for missing) and `scores` per test row, and the
 * bootstrap resamples as row indices. Null when no resample has both classes.
 */
export function rocBand(truth: ArrayLike<number>, scores: ArrayLike<number>, indices: readonly Int32Array[], points = 51): RocBand | null {
  const rows: number[] = [];
  for (let i = 0; i < truth.length; i++) if (!Number.isNaN(truth[i])) rows.push(i);
  const order = orderByScoreDesc(scores, rows);
  const grid = Array.from({ length: points }, (_, k) => k / (points - 1));
  const perPoint = grid.map(() => [] as number[]);
  const counts = new Int32Array(truth.length);
  let valid = 0;
  for (const idx of indices) {
    counts.fill(0);
    for (const i of idx) counts[i]++;
    const tpr = tprOnGrid(order, truth, scores, counts, grid);
    if (!tpr) continue;
    valid++;
    tpr.forEach((v, g) => perPoint[g].push(v));
  }
  if (valid === 0) return null;
  const lo: number[] = [];
  const hi: number[] = [];
  for (const values of perPoint) {
    const s = summarize(values)!;
    lo.push(s.lo);
    hi.push(s.hi);
  }
  return { fpr: grid, lo, hi, valid };
}
