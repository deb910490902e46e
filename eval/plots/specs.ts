// The project's figures as Vega-Lite specs, browser-safe: the same spec renders to SVG/PNG in Node
// (render-node.ts) and in the browser page with vega-embed. Each builder takes plain numbers and
// returns a spec with its data inline.
//
// - rocSpec: ROC curves, one panel per label, with each model's 95% bootstrap band, the chance line,
//   n and the number of positives in the panel title, and AUC (95% interval) per model in the panel.
// - trainingSizeSpec: mean AUC against the training fraction per initialization, 95% intervals, one
//   panel per dataset (the paper's question: where does self-supervised initialization help most).
// - trainingCurvesSpec: a run's loss (train, validation) and validation mean AUC per epoch.

import type { TopLevelSpec } from 'vega-lite';

/** The font the figures are set in; render-node.ts loads this face, so PNGs match the SVG layout. */
export const FIGURE_FONT = 'DejaVu Sans';

/** Okabe–Ito: distinguishable with every common form of color blindness, and in grayscale print. */
export const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#000000', '#F0E442'];

const INK = '#222222';

/** The shared look: sizes readable when a two-column figure is printed at 17 cm. */
export function figureConfig(): Record<string, unknown> {
  return {
    font: FIGURE_FONT,
    background: 'white',
    padding: 8,
    view: { stroke: '#555555', strokeWidth: 0.8 },
    axis: {
      labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal', labelColor: INK, titleColor: INK,
      domainColor: '#555555', tickColor: '#555555', gridColor: '#e8e8e8', titlePadding: 8,
    },
    legend: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'bold', labelColor: INK, titleColor: INK, symbolStrokeWidth: 2.5, labelLimit: 0 },
    header: { labelFontSize: 12, labelFontWeight: 'bold', labelColor: INK, titleFontSize: 13, labelLimit: 0, labelPadding: 6 },
    title: { fontSize: 14, fontWeight: 'bold', color: INK, anchor: 'start', offset: 10 },
    range: { category: PALETTE },
    line: { strokeWidth: 2 },
  };
}

function colorScale(names: readonly string[]) {
  return { domain: [...names], range: names.map((_, i) => PALETTE[i % PALETTE.length]) };
}

export interface RocModelCurve {
  name: string;
  fpr: readonly number[];
  tpr: readonly number[];
  auc: number;
  /** 95% bootstrap interval of the AUC. */
  aucLo?: number;
  aucHi?: number;
  /** 95% bootstrap band of the curve (eval/roc-band.ts). */
  band?: { fpr: readonly number[]; lo: readonly number[]; hi: readonly number[] } | null;
}

export interface RocFigurePanel {
  label: string;
  /** Test images with a known value of the label, and how many are positive. */
  n: number;
  positives: number;
  models: RocModelCurve[];
}

const AUC_FONT = 10;
const LINE0 = 0.04;
const LINE = 0.085;

const f3 = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : 'n/a');

/** "Cardiomegaly (n = 120, 31 positive)". */
export function rocPanelTitle(p: RocFigurePanel): string {
  return `${p.label} (n = ${p.n}, ${p.positives} positive)`;
}

export function rocSpec(panels: readonly RocFigurePanel[], opts: { title?: string; columns?: number; size?: number } = {}): TopLevelSpec {
  if (panels.length === 0) throw new Error('rocSpec: no panel to draw');
  const models: string[] = [];
  for (const p of panels) for (const m of p.models) if (!models.includes(m.name)) models.push(m.name);
  const size = opts.size ?? 240;
  const rows: Record<string, unknown>[] = [];
  for (const p of panels) {
    const panel = rocPanelTitle(p);
    rows.push({ panel, kind: 'chance', x: 0, y: 0 }, { panel, kind: 'chance', x: 1, y: 1 });
    const texts: string[] = [];
    p.models.forEach((m, rank) => {
      if (m.fpr.length !== m.tpr.length) throw new Error(`rocSpec: model "${m.name}" in panel "${p.label}" has ${m.fpr.length} fpr and ${m.tpr.length} tpr values`);
      m.fpr.forEach((x, k) => {
        if (!(x >= 0 && x <= 1 && m.tpr[k] >= 0 && m.tpr[k] <= 1)) throw new Error(`rocSpec: point ${k} of "${m.name}" in "${p.label}" lies outside the unit square`);
        rows.push({ panel, kind: 'curve', model: m.name, x, y: m.tpr[k], order: k });
      });
      m.band?.fpr.forEach((x, k) => rows.push({ panel, kind: 'band', model: m.name, x, lo: m.band!.lo[k], hi: m.band!.hi[k] }));
      const ci = m.aucLo !== undefined && m.aucHi !== undefined ? ` (${f3(m.aucLo)}–${f3(m.aucHi)})` : '';
      const text = `${models.length > 1 ? `${m.name} ` : ''}${f3(m.auc)}${ci}`;
      texts.push(text);
      // AUC lines stack up from the panel's lower right under their heading, the first model on top.
      rows.push({ panel, kind: 'auc', model: m.name, x: 0.97, y: LINE0 + LINE * (p.models.length - 1 - rank), text });
    });
    const heading = p.models.some((m) => m.aucLo !== undefined) ? 'AUC (95% CI)' : 'AUC';
    texts.push(heading);
    rows.push({ panel, kind: 'heading', x: 0.97, y: LINE0 + LINE * p.models.length, text: heading });
    // A white box under the AUC lines keeps them legible over curves and bands (0.66 em per character
    // covers DejaVu Sans digits and letters).
    const width = (Math.max(...texts.map((t) => t.length)) * AUC_FONT * 0.64 + 10) / size;
    rows.push({ panel, kind: 'box', x: Math.max(0.02, 0.985 - width), x2: 0.985, y: 0.015, y2: LINE0 + LINE * p.models.length + 0.07 });
  }
  const unit = { type: 'quantitative' as const, scale: { domain: [0, 1], nice: false } };
  const color = { field: 'model', type: 'nominal' as const, scale: colorScale(models), legend: { title: models.length > 1 ? 'Model' : null, orient: 'bottom' as const, direction: 'horizontal' as const, symbolType: 'stroke', symbolOpacity: 1, symbolStrokeWidth: 3 } };
  // Bands and AUC lines take their color through `fill`, a channel of its own: only the curves make
  // the legend, so its symbols are lines in full color.
  const fill = { field: 'model', type: 'nominal' as const, scale: colorScale(models), legend: color.legend };
  const only = (kind: string) => ({ filter: `datum.kind === '${kind}'` });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    ...(opts.title ? { title: opts.title } : {}),
    data: { values: rows },
    facet: { field: 'panel', type: 'nominal', sort: panels.map(rocPanelTitle), header: { title: null } },
    columns: opts.columns ?? (panels.length <= 4 ? panels.length : Math.min(4, Math.ceil(Math.sqrt(panels.length)))),
    spacing: { row: 18, column: 22 },
    spec: {
      width: size,
      height: size,
      layer: [
        {
          transform: [only('band')],
          mark: { type: 'area', opacity: 0.18 },
          encoding: { x: { field: 'x', ...unit, title: '1 − Specificity' }, y: { field: 'lo', ...unit, title: 'Sensitivity' }, y2: { field: 'hi' }, fill },
        },
        {
          transform: [only('chance')],
          mark: { type: 'line', color: '#9a9a9a', strokeDash: [4, 4], strokeWidth: 1 },
          encoding: { x: { field: 'x', ...unit }, y: { field: 'y', ...unit } },
        },
        {
          transform: [only('curve')],
          mark: { type: 'line', strokeWidth: 1.8, interpolate: 'linear' },
          encoding: { x: { field: 'x', ...unit }, y: { field: 'y', ...unit }, color, order: { field: 'order', type: 'quantitative' } },
        },
        {
          transform: [only('box')],
          mark: { type: 'rect', fill: 'white', fillOpacity: 0.88, stroke: '#d0d0d0', strokeWidth: 0.6, cornerRadius: 2 },
          encoding: { x: { field: 'x', ...unit }, x2: { field: 'x2' }, y: { field: 'y', ...unit }, y2: { field: 'y2' } },
        },
        {
          transform: [only('auc')],
          mark: { type: 'text', align: 'right', baseline: 'bottom', fontSize: AUC_FONT },
          encoding: { x: { field: 'x', ...unit }, y: { field: 'y', ...unit }, text: { field: 'text' }, fill },
        },
        {
          transform: [only('heading')],
          mark: { type: 'text', align: 'right', baseline: 'bottom', fontSize: AUC_FONT, fontWeight: 'bold', color: INK },
          encoding: { x: { field: 'x', ...unit }, y: { field: 'y', ...unit }, text: { field: 'text' } },
        },
      ],
    },
    // Axes on every panel: an incomplete last row then has no stray axis under its empty cells.
    resolve: { scale: { x: 'shared', y: 'shared' }, axis: { x: 'independent', y: 'independent' } },
    config: figureConfig(),
  } as TopLevelSpec;
}

export interface TrainingSizePoint {
  dataset: string;
  init: string;
  fraction: number;
  /** Mean AUC and its 95% interval. */
  mean: number;
  lo: number;
  hi: number;
}

/** "1%", "10%", "0.5%", "100%". */
export function percentLabel(fraction: number): string {
  return `${Number((fraction * 100).toPrecision(3))}%`;
}

export function trainingSizeSpec(points: readonly TrainingSizePoint[], opts: { title?: string; inits?: readonly string[]; datasets?: readonly string[]; intervalNote?: string } = {}): TopLevelSpec {
  if (points.length === 0) throw new Error('trainingSizeSpec: no point to draw');
  const inits = opts.inits ?? [...new Set(points.map((p) => p.init))];
  const datasets = opts.datasets ?? [...new Set(points.map((p) => p.dataset))];
  const fractions = [...new Set(points.map((p) => p.fraction))].sort((a, b) => a - b);
  // Initializations side by side around each fraction (multiplicative offsets: the x axis is logarithmic).
  const spread = 0.05 * Math.max(1, Math.log10(fractions[fractions.length - 1] / fractions[0]) || 1);
  const rows = points.map((p) => {
    const k = inits.indexOf(p.init);
    return { ...p, x: p.fraction * 10 ** (spread * (k - (inits.length - 1) / 2)), label: percentLabel(p.fraction) };
  });
  const lo = Math.min(...points.map((p) => p.lo));
  const hi = Math.max(...points.map((p) => p.hi));
  const pad = Math.max(0.01, (hi - lo) * 0.08);
  const minX = fractions[0] * 10 ** (-2 * spread - 0.04);
  const maxX = fractions[fractions.length - 1] * 10 ** (2 * spread + 0.04);
  const color = { field: 'init', type: 'nominal' as const, scale: colorScale(inits), legend: { title: 'Initialization', orient: 'bottom' as const, direction: 'horizontal' as const } };
  const x = {
    field: 'x', type: 'quantitative' as const,
    scale: { type: 'log' as const, domain: [minX, maxX], nice: false },
    axis: { values: fractions, labelExpr: `format(datum.value * 100, '~r') + '%'`, grid: false },
    title: 'Training set size (log scale)',
  };
  const y = { field: 'mean', type: 'quantitative' as const, scale: { domain: [Math.max(0, lo - pad), Math.min(1, hi + pad)], nice: false, zero: false }, title: opts.intervalNote ? `Mean AUC (${opts.intervalNote})` : 'Mean AUC (95% interval)' };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    ...(opts.title ? { title: opts.title } : {}),
    data: { values: rows },
    facet: { field: 'dataset', type: 'nominal', sort: [...datasets], header: { title: null } },
    columns: Math.min(3, datasets.length),
    spacing: { row: 18, column: 24 },
    spec: {
      width: 260,
      height: 210,
      layer: [
        { mark: { type: 'rule', strokeWidth: 1.6 }, encoding: { x, y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' }, color } },
        { mark: { type: 'line', strokeWidth: 1.6 }, encoding: { x, y, color } },
        { mark: { type: 'point', filled: true, size: 46 }, encoding: { x, y, color, shape: { field: 'init', type: 'nominal', scale: { domain: [...inits] }, legend: null } } },
      ],
    },
    resolve: { scale: { y: 'shared' } },
    config: figureConfig(),
  } as TopLevelSpec;
}

export interface CurveEpoch {
  epoch: number;
  trainLoss: number;
  valLoss: number;
  valAuc: number;
  best?: boolean;
}

export function trainingCurvesSpec(history: readonly CurveEpoch[], opts: { title?: string } = {}): TopLevelSpec {
  if (history.length === 0) throw new Error('trainingCurvesSpec: no epoch to draw');
  const loss = history.flatMap((e) => [
    { epoch: e.epoch, series: 'Training loss', value: e.trainLoss },
    { epoch: e.epoch, series: 'Validation loss', value: e.valLoss },
  ]).filter((r) => Number.isFinite(r.value));
  const auc = history.filter((e) => Number.isFinite(e.valAuc)).map((e) => ({ epoch: e.epoch, value: e.valAuc, best: Boolean(e.best) }));
  const best = history.reduce<CurveEpoch | null>((b, e) => (Number.isFinite(e.valAuc) && (b === null || e.valAuc > b.valAuc) ? e : b), null);
  const maxEpoch = Math.max(...history.map((e) => e.epoch));
  const xAxis = { field: 'epoch', type: 'quantitative' as const, title: 'Epoch', scale: { domain: [history[0].epoch > 0 ? 1 : 0, Math.max(2, maxEpoch)], nice: false }, axis: { tickMinStep: 1, format: 'd' } };
  const series = ['Training loss', 'Validation loss'];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    ...(opts.title ? { title: opts.title } : {}),
    hconcat: [
      {
        width: 280,
        height: 200,
        data: { values: loss },
        layer: [
          { mark: { type: 'line', strokeWidth: 1.8 }, encoding: { x: xAxis, y: { field: 'value', type: 'quantitative', title: 'Loss (weighted BCE)', scale: { zero: false, padding: 10 } }, color: { field: 'series', type: 'nominal', scale: colorScale(series), legend: { title: null, orient: 'bottom', direction: 'horizontal' } } } },
          { mark: { type: 'point', filled: true, size: 28 }, encoding: { x: xAxis, y: { field: 'value', type: 'quantitative' }, color: { field: 'series', type: 'nominal', scale: colorScale(series), legend: null } } },
        ],
      },
      {
        width: 280,
        height: 200,
        data: { values: auc },
        layer: [
          { mark: { type: 'line', strokeWidth: 1.8, color: PALETTE[2] }, encoding: { x: xAxis, y: { field: 'value', type: 'quantitative', title: 'Validation mean AUC', scale: { zero: false, padding: 10 } } } },
          { mark: { type: 'point', filled: true, size: 28, color: PALETTE[2] }, encoding: { x: xAxis, y: { field: 'value', type: 'quantitative' } } },
          ...(best
            ? [{
                data: { values: [{ epoch: best.epoch, value: best.valAuc, text: `best: epoch ${best.epoch}, ${f3(best.valAuc)}` }] },
                layer: [
                  { mark: { type: 'point' as const, shape: 'diamond', filled: true, size: 110, color: PALETTE[3] }, encoding: { x: xAxis, y: { field: 'value', type: 'quantitative' as const } } },
                  { mark: { type: 'text' as const, dy: -12, fontSize: 10.5, color: INK, align: (best.epoch > maxEpoch / 2 ? 'right' : 'left') as 'right' | 'left' }, encoding: { x: xAxis, y: { field: 'value', type: 'quantitative' as const }, text: { field: 'text' } } },
                ],
              }]
            : []),
        ],
      },
    ],
    spacing: 30,
    config: figureConfig(),
  } as TopLevelSpec;
}
