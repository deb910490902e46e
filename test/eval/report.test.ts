// eval/report.ts: the markdown table of a hand-built comparison, character for character; CSV quoting
// read back by an RFC 4180 parser. Pure CPU. (The ROC figure: test/eval/plots.test.ts.)

import { describe, expect, it } from 'vitest';
import {
  compareModels,
  mulberry32,
  type BootstrapMetric,
  type BootstrapResult,
  type ModelComparison,
  type Summary,
} from '../../eval/bootstrap.js';
import { LABEL_METRICS } from '../../eval/metrics.js';
import { csvField, formatPValue, markdownTable, predictionsCsv } from '../../eval/report.js';

const summary = (mean: number, std: number): Summary => ({ mean, std, lo: mean - 2 * std, hi: mean + 2 * std });

/** A bootstrap result with the given AUC summaries for an 'ok' label "Atelectasis", a one-class label
 * "Single", and the mean. */
function result(auc: Summary, mean: Summary): BootstrapResult {
  const stats = {} as Record<BootstrapMetric, Summary | null>;
  for (const m of LABEL_METRICS) stats[m] = auc;
  return {
    resamples: 1000,
    seed: 0,
    thresholdPolicy: 'test',
    thresholds: null,
    labels: [
      { label: 'Atelectasis', status: 'ok', valid: 1000, skipped: 0, uninformative: 0, stats },
      { label: 'Single', status: 'single-class', valid: 0, skipped: 1000, uninformative: 0, stats: null },
    ],
    meanAuc: { status: 'ok', valid: 1000, skipped: 0, stats: mean },
    point: { labels: [], macro: null },
  };
}

const handComparison: ModelComparison = {
  labelNames: ['Atelectasis', 'Single'],
  models: ['ImageNet', 'DINOv2'],
  baseline: 'ImageNet',
  resamples: 1000,
  seed: 0,
  thresholdPolicy: 'test',
  results: {
    ImageNet: result(summary(0.8892, 0.0103), summary(0.8892, 0.0103)),
    DINOv2: result(summary(0.901, 0.0095), summary(0.901, 0.0095)),
  },
  pairs: [
    {
      a: 'DINOv2',
      b: 'ImageNet',
      labels: [
        { label: 'Atelectasis', status: 'ok', valid: 1000, p: 0.0004, pAdjusted: 0.0008, diff: summary(0.012, 0.004) },
        { label: 'Single', status: 'too-few-resamples', valid: 0, p: null, pAdjusted: null, diff: null },
      ],
      meanAuc: { status: 'ok', valid: 1000, p: 0.0234, diff: summary(0.012, 0.004) },
    },
  ],
};

describe('markdownTable', () => {
  it('writes the paper-style table of a comparison', () => {
    expect(markdownTable(handComparison)).toBe(
      [
        '| Label | ImageNet AUC (%) | DINOv2 AUC (%) | p DINOv2 > ImageNet (BH) |',
        '| --- | ---: | ---: | ---: |',
        '| Atelectasis | 88.92 ± 1.03 (86.86–90.98) | 90.10 ± 0.95 (88.20–92.00) | <0.001 |',
        '| Single | n/a (one class) | n/a (one class) | n/a |',
        '| Mean | 88.92 ± 1.03 (86.86–90.98) | 90.10 ± 0.95 (88.20–92.00) | 0.023 |',
        '',
        'AUC in %: bootstrap mean ± std (ddof 1) and, in parentheses, the 95% interval (2.5th–97.5th percentiles) over 1000 resamples (seed 0); ' +
          'all 1000 resamples used for every label; a cell from fewer than 2 resamples shows the mean alone. The Mean row is the macro mean AUC over 1 label.',
        "p: one-sided paired bootstrap, the fraction of resamples in which the model's AUC is not above ImageNet's. " +
          'Per-label p-values marked BH are Benjamini–Hochberg adjusted across the 1 label; the Mean row p-value is a single test, unadjusted.',
        '',
      ].join('\n'),
    );
  });

  it('can show raw and adjusted p-values side by side', () => {
    const lines = markdownTable(handComparison, { pValues: 'both' }).split('\n');
    expect(lines[0]).toBe('| Label | ImageNet AUC (%) | DINOv2 AUC (%) | p DINOv2 > ImageNet (BH) | p DINOv2 > ImageNet (raw) |');
    expect(lines[2]).toBe('| Atelectasis | 88.92 ± 1.03 (86.86–90.98) | 90.10 ± 0.95 (88.20–92.00) | <0.001 | <0.001 |');
    expect(lines[4]).toBe('| Mean | 88.92 ± 1.03 (86.86–90.98) | 90.10 ± 0.95 (88.20–92.00) | 0.023 | 0.023 |');
  });

  it('tables a real comparison, one column of p-values per model tested against the baseline', () => {
    const random = mulberry32(1);
    const truth = Array.from({ length: 120 }, () => [random() < 0.4 ? 1 : 0, 0, random() < 0.3 ? 1 : 0]);
    const model = (signal: number) => truth.map((row) => row.map((y) => y * signal + random()));
    const cmp = compareModels(['Edema', 'Never', 'Mass|Nodule'], truth, { base: model(0.2), mid: model(0.6), top: model(1.5) }, { resamples: 200 });
    const table = markdownTable(cmp, { baseline: 'base' });
    const lines = table.split('\n');
    expect(lines[0]).toBe('| Label | base AUC (%) | mid AUC (%) | top AUC (%) | p mid > base (BH) | p top > base (BH) |');
    expect(lines).toHaveLength(6 + 1 + 2 + 1);
    expect(lines[3]).toBe('| Never | n/a (one class) | n/a (one class) | n/a (one class) | n/a | n/a |');
    expect(lines[4].startsWith('| Mass\\|Nodule | ')).toBe(true);
    expect(lines[5]).toMatch(/^\| Mean \| \d+\.\d\d ± \d\.\d\d \(\d+\.\d\d–\d+\.\d\d\) \|/);
    expect(() => markdownTable(cmp, { baseline: 'other' })).toThrow(/baseline "other"/);
  });

  it('formats p-values', () => {
    expect([0, 0.0009, 0.001, 0.0234, 0.5, 1, null, NaN].map(formatPValue)).toEqual([
      '<0.001', '<0.001', '0.001', '0.023', '0.500', '1.000', 'n/a', 'n/a',
    ]);
  });
});

/** RFC 4180 reader, for reading the CSV back. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += ch;
  }
  return rows;
}

describe('predictionsCsv', () => {
  const paths = ['a.png', 'dir,x/b "q".png', 'line\nbreak.png'];
  const truth = [[1, 0], [0, NaN], [1, 1]];
  const probs = [[0.25, 0.5], [0.125, NaN], [1, 0.1 + 0.2]];

  it('writes a header, one row per image, and quotes paths that need it', () => {
    expect(predictionsCsv(paths, ['Edema', 'Mass'], truth, probs)).toBe(
      [
        'image,Edema_true,Edema_prob,Mass_true,Mass_prob',
        'a.png,1,0.25,0,0.5',
        '"dir,x/b ""q"".png",0,0.125,,',
        '"line\nbreak.png",1,1,1,0.30000000000000004',
        '',
      ].join('\n'),
    );
  });

  it('reads back to the same fields', () => {
    const rows = parseCsv(predictionsCsv(paths, ['Edema', 'Mass'], truth, probs));
    expect(rows.map((r) => r[0])).toEqual(['image', ...paths]);
    expect(rows.every((r) => r.length === 5)).toBe(true);
    expect(Number(rows[3][4])).toBe(0.1 + 0.2);
  });

  it('quotes only what RFC 4180 requires', () => {
    expect(csvField('plain name.png')).toBe('plain name.png');
    expect(csvField('a\rb')).toBe('"a\rb"');
    expect(() => predictionsCsv(['a'], ['x'], [], [])).toThrow(/1 images/);
  });
});
