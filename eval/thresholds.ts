// Where the per-label decision threshold comes from. The paper picks Youden's threshold on the test set
// it then scores ('test': optimistic, the threshold has seen the answers); 'valid' picks it on the
// validation split's predictions and applies it unchanged to the test split, and to every bootstrap
// resample of it. Browser-safe.

import { labelColumns, orderByScoreDesc, rocWalk } from './metrics.js';

export type ThresholdPolicy = 'valid' | 'test';

/**
 * Youden's threshold of every label on one split (truth [sample][label] 0, 1 or NaN; probabilities of
 * the same shape): the threshold to pass as `thresholds` with thresholdPolicy 'valid'. NaN where the
 * split holds one class of the label; +Infinity where no threshold beats chance.
 */
export function youdenThresholds(labelNames: readonly string[], truth: readonly (readonly number[])[], probs: readonly (readonly number[])[]): Float64Array {
  return Float64Array.from(labelColumns(labelNames, truth, probs), (col) => rocWalk(orderByScoreDesc(col.scores, col.samples), col.truth, col.scores).threshold);
}
