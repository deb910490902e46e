// Text reports of an evaluation: the paper-style markdown table of a model comparison, and a CSV of
// every prediction. Browser-safe (returns strings; writing them is the caller's business).

import { findPair, type BootstrapResult, type ModelComparison, type Summary } from './bootstrap.js';
import { EvalInputError } from './metrics.js';

export type PValueColumns = 'adjusted' | 'raw' | 'both';

export interface MarkdownTableOptions {
  /** The model the others are tested against; default the comparison's baseline, else its first model. */
  baseline?: string;
  /** Model columns, in order; default all models of the comparison. */
  models?: string[];
  /** Per-label p-value columns: BH-adjusted (default), raw, or both. */
  pValues?: PValueColumns;
}

/** A p-value as the table shows it: "<0.001" below 0.001, else three decimals; "n/a" when missing. */
export function formatPValue(p: number | null): string {
  if (p === null || Number.isNaN(p)) return 'n/a';
  return p < 0.001 ? '<0.001' : p.toFixed(3);
}

/**
 * "88.92 ± 1.03 (86.80–90.85)": a bootstrap summary in percent, 2 decimals: mean ± std (ddof 1) as the
 * paper reports it, then the 95% percentile interval as medical papers do. From fewer than two
 * resamples there is no spread: the mean alone. Never NaN or Infinity.
 */
export function formatAuc(s: Summary, scale = 100, digits = 2): string {
  const f = (v: number) => (v * scale).toFixed(digits);
  if (!Number.isFinite(s.mean)) return 'n/a';
  if (!Number.isFinite(s.std) || !Number.isFinite(s.lo) || !Number.isFinite(s.hi)) return f(s.mean);
  return `${f(s.mean)} ± ${f(s.std)} (${f(s.lo)}–${f(s.hi)})`;
}

/** How many resamples each label used, when that is not all of them, for the notes under a table. */
function resamplesUsed(r: BootstrapResult, labelNames: readonly string[]): string {
  const R = r.resamples;
  const partial = r.labels.filter((l) => l.status !== 'single-class' && l.valid < R);
  const mean = r.meanAuc.status === 'no-labels' ? '' : `, the Mean row ${r.meanAuc.valid}`;
  if (partial.length === 0 && (r.meanAuc.valid === R || r.meanAuc.status === 'no-labels')) return `all ${R} resamples used for every label`;
  const per = labelNames.map((name, l) => (r.labels[l].status === 'single-class' ? null : `${name} ${r.labels[l].valid}`)).filter(Boolean);
  return `resamples used (those in which the label has both classes): ${per.join(', ')}${mean} of ${R}`;
}

const ONE_CLASS = 'n/a (one class)';

function cell(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/[\r\n]+/g, ' ');
}

/**
 * The comparison as a markdown table in the paper's style: one row per label and a final "Mean" row
 * (the macro mean AUC), one column per model with the bootstrap AUC "mean ± std" in percent, then for
 * every other model a column of one-sided p-values for "model's AUC above the baseline's". A note under
 * the table says which p-values are BH-adjusted (per-label, across the labels) and which raw (the Mean
 * row, a single test). Labels with one class in the test set show "n/a (one class)".
 */
export function markdownTable(comparison: ModelComparison, options: MarkdownTableOptions = {}): string {
  const models = options.models ?? comparison.models;
  for (const m of models) {
    if (!(m in comparison.results)) throw new EvalInputError(`markdownTable: model ${JSON.stringify(m)} is not in the comparison`);
  }
  const baseline = options.baseline ?? comparison.baseline ?? models[0];
  if (!(baseline in comparison.results)) throw new EvalInputError(`markdownTable: baseline ${JSON.stringify(baseline)} is not in the comparison`);
  const mode = options.pValues ?? 'adjusted';
  const kinds: ('adjusted' | 'raw')[] = mode === 'both' ? ['adjusted', 'raw'] : [mode];
  const tested = models.filter((m) => m !== baseline);
  const pairs = tested.map((m) => {
    const pair = findPair(comparison, m, baseline);
    if (pair === undefined) throw new EvalInputError(`markdownTable: the comparison has no test of ${JSON.stringify(m)} against ${JSON.stringify(baseline)}`);
    return pair;
  });

  const header = ['Label', ...models.map((m) => `${m} AUC (%)`)];
  for (const m of tested) {
    for (const kind of kinds) header.push(`p ${m} > ${baseline} (${kind === 'adjusted' ? 'BH' : 'raw'})`);
  }
  const rows: string[][] = [header, header.map((_, i) => (i === 0 ? '---' : '---:'))];

  comparison.labelNames.forEach((label, l) => {
    const oneClass = comparison.results[baseline].labels[l].status === 'single-class';
    const row = [label];
    for (const m of models) {
      const auc = comparison.results[m].labels[l].stats?.auc;
      row.push(oneClass ? ONE_CLASS : auc ? formatAuc(auc) : 'n/a');
    }
    for (const pair of pairs) {
      for (const kind of kinds) {
        const t = pair.labels[l];
        row.push(oneClass ? 'n/a' : formatPValue(kind === 'adjusted' ? t.pAdjusted : t.p));
      }
    }
    rows.push(row);
  });

  const meanRow = ['Mean'];
  for (const m of models) {
    const stats = comparison.results[m].meanAuc.stats;
    meanRow.push(stats === null ? 'n/a' : formatAuc(stats));
  }
  for (const pair of pairs) meanRow.push(...kinds.map(() => formatPValue(pair.meanAuc.p)));
  rows.push(meanRow);

  const okLabels = comparison.results[baseline].labels.filter((r) => r.status !== 'single-class').length;
  const labelsText = `${okLabels} label${okLabels === 1 ? '' : 's'}`;
  const seed = comparison.seed === null ? 'given indices' : `seed ${comparison.seed}`;
  const notes = [
    `AUC in %: bootstrap mean ± std (ddof 1) and, in parentheses, the 95% interval (2.5th–97.5th percentiles) over ${comparison.resamples} resamples (${seed}); ` +
      `${resamplesUsed(comparison.results[baseline], comparison.labelNames)}; a cell from fewer than 2 resamples shows the mean alone. ` +
      `The Mean row is the macro mean AUC over ${labelsText}.`,
  ];
  if (tested.length > 0) {
    notes.push(
      `p: one-sided paired bootstrap, the fraction of resamples in which the model's AUC is not above ${baseline}'s. ` +
        `Per-label p-values ${mode === 'raw' ? 'are raw (unadjusted)' : `marked BH are Benjamini–Hochberg adjusted across the ${labelsText}${mode === 'both' ? ', those marked raw unadjusted' : ''}`}; ` +
        'the Mean row p-value is a single test, unadjusted.',
    );
  }
  return [...rows.map((r) => `| ${r.map(cell).join(' | ')} |`), '', ...notes].join('\n') + '\n';
}

/** A threshold in [0, 1] scale, 4 decimals; a non-finite one says why. */
function formatThreshold(t: number): string {
  if (Number.isNaN(t)) return 'none (one class where it was chosen)';
  if (!Number.isFinite(t)) return 'none (no threshold beats chance)';
  return t.toFixed(4);
}

/**
 * Per model, the metrics at the threshold (in %, mean ± std (95% interval)), one row per label, and
 * notes that say where the threshold came from (thresholdPolicy) and how many resamples had no
 * informative threshold. Never prints NaN or Infinity.
 */
export function youdenTable(comparison: ModelComparison): string {
  const parts: string[] = [];
  const fixed = comparison.thresholdPolicy === 'valid';
  for (const [name, r] of Object.entries(comparison.results)) {
    const how = fixed ? 'chosen on the validation split, fixed in every resample' : 'chosen on the test split, recomputed in each resample';
    parts.push(`\n\n## ${name}: metrics at the Youden threshold (${how}), %\n`);
    parts.push('| Label | Threshold | Accuracy | Sensitivity | Specificity | Precision | F1 |');
    parts.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    const notes: string[] = [];
    comparison.labelNames.forEach((label, j) => {
      const lr = r.labels[j];
      const st = lr.stats;
      if (lr.status === 'single-class' || !st) {
        parts.push(`| ${cell(label)} | n/a (one class) | | | | | |`);
        return;
      }
      const thr = fixed ? formatThreshold(r.thresholds![j]) : st.threshold ? formatAuc(st.threshold, 1, 4) : 'none (no threshold beats chance)';
      const pct = (s: Summary | null) => (s ? formatAuc(s) : 'n/a');
      parts.push(`| ${cell(label)} | ${thr} | ${pct(st.accuracy)} | ${pct(st.sensitivity)} | ${pct(st.specificity)} | ${pct(st.precision)} | ${pct(st.f1)} |`);
      if (lr.uninformative > 0) {
        notes.push(`${label}: ${lr.uninformative} of ${lr.valid} resamples had no informative threshold` +
          `${fixed ? ' (the validation threshold is not finite)' : " (Youden's J <= 0 at every cut)"}; the metrics summarize the other ${lr.valid - lr.uninformative}.`);
      }
    });
    parts.push('');
    parts.push(fixed
      ? 'Threshold: per label, the one maximizing Youden\'s J (TPR − FPR) on the validation split\'s predictions, applied unchanged to the test split and to every resample.'
      : 'Threshold: per label, the one maximizing Youden\'s J (TPR − FPR) on the test split itself, recomputed in every resample (the paper\'s choice; optimistic, as the threshold sees the data it is scored on).');
    parts.push(`Cells: mean ± std (ddof 1) and, in parentheses, the 95% interval over the resamples; ${resamplesUsed(r, comparison.labelNames)}.`, ...notes);
  }
  return parts.join('\n');
}

/** A CSV field, quoted (RFC 4180) when it holds a comma, a double quote, CR or LF. */
export function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/**
 * Every prediction as CSV: header `image,<label>_true,<label>_prob,…`, one row per image, truth as 0/1
 * and probabilities at full precision; a missing (NaN) value is an empty field. Lines end with "\n".
 */
export function predictionsCsv(
  imagePaths: readonly string[],
  labelNames: readonly string[],
  truth: readonly (readonly number[])[],
  probs: readonly (readonly number[])[],
): string {
  const n = imagePaths.length;
  if (truth.length !== n || probs.length !== n) {
    throw new EvalInputError(`predictionsCsv: ${n} images, ${truth.length} truth rows, ${probs.length} probability rows`);
  }
  const num = (v: number) => (Number.isNaN(v) ? '' : String(v));
  const lines = [['image', ...labelNames.flatMap((name) => [`${name}_true`, `${name}_prob`])].map(csvField).join(',')];
  for (let r = 0; r < n; r++) {
    if (truth[r].length !== labelNames.length || probs[r].length !== labelNames.length) {
      throw new EvalInputError(`predictionsCsv: row ${r} (${imagePaths[r]}) does not have ${labelNames.length} truth and probability values`);
    }
    const fields = [csvField(imagePaths[r])];
    for (let l = 0; l < labelNames.length; l++) fields.push(num(truth[r][l]), num(probs[r][l]));
    lines.push(fields.join(','));
  }
  return lines.join('\n') + '\n';
}
