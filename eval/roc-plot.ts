// ROC curves as a PNG: one panel per label in a grid; each panel has its title, an axes box with ticks,
// the dashed chance diagonal, one curve per model (the same color for a model in every panel) and a
// legend "name AUC 0.889". Drawn pixel by pixel into an RGB buffer and encoded with fast-png, with a
// small built-in 5×7 bitmap font, so it runs unchanged in a browser and needs no plotting library.

import { encode } from 'fast-png';
import { EvalInputError } from './metrics.js';

export type Rgb = readonly [number, number, number];

export interface RocPanel {
  /** The panel title (the label name). */
  label: string;
  models: { name: string; fpr: number[]; tpr: number[]; auc: number }[];
}

export interface RocPlotOptions {
  /** Width and height of one panel in pixels; default 300, at least 160. */
  panelSize?: number;
  /** Panels per row; default ceil(sqrt(panels)). */
  columns?: number;
  /** Colors of the models in order of first appearance; default ROC_PALETTE, then generated hues. */
  colors?: readonly Rgb[];
}

/** Default model colors (matplotlib's tab10). */
export const ROC_PALETTE: readonly Rgb[] = [
  [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
  [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207],
];

const BACKGROUND: Rgb = [255, 255, 255];
const INK: Rgb = [32, 32, 32];
const GRID: Rgb = [232, 232, 232];
const CHANCE: Rgb = [150, 150, 150];

// ---- 5×7 bitmap font -------------------------------------------------------------------------------
// Rows top to bottom, '#' = ink. Seven rows sit on the baseline; glyphs with descenders have nine.

const GLYPH_ROWS: Record<string, string> = {
  '0': '.###. #...# #..## #.#.# ##..# #...# .###.',
  '1': '..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.',
  '2': '.###. #...# ....# ...#. ..#.. .#... #####',
  '3': '##### ...#. ..#.. ...#. ....# #...# .###.',
  '4': '...#. ..##. .#.#. #..#. ##### ...#. ...#.',
  '5': '##### #.... ####. ....# ....# #...# .###.',
  '6': '..##. .#... #.... ####. #...# #...# .###.',
  '7': '##### ....# ...#. ..#.. .#... .#... .#...',
  '8': '.###. #...# #...# .###. #...# #...# .###.',
  '9': '.###. #...# #...# .#### ....# ...#. .##..',
  A: '.###. #...# #...# #...# ##### #...# #...#',
  B: '####. #...# #...# ####. #...# #...# ####.',
  C: '.###. #...# #.... #.... #.... #...# .###.',
  D: '###.. #..#. #...# #...# #...# #..#. ###..',
  E: '##### #.... #.... ####. #.... #.... #####',
  F: '##### #.... #.... ####. #.... #.... #....',
  G: '.###. #...# #.... #.### #...# #...# .####',
  H: '#...# #...# #...# ##### #...# #...# #...#',
  I: '.###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.',
  J: '..### ...#. ...#. ...#. ...#. #..#. .##..',
  K: '#...# #..#. #.#.. ##... #.#.. #..#. #...#',
  L: '#.... #.... #.... #.... #.... #.... #####',
  M: '#...# ##.## #.#.# #.#.# #...# #...# #...#',
  N: '#...# #...# ##..# #.#.# #..## #...# #...#',
  O: '.###. #...# #...# #...# #...# #...# .###.',
  P: '####. #...# #...# ####. #.... #.... #....',
  Q: '.###. #...# #...# #...# #.#.# #..#. .##.#',
  R: '####. #...# #...# ####. #.#.. #..#. #...#',
  S: '.#### #.... #.... .###. ....# ....# ####.',
  T: '##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..',
  U: '#...# #...# #...# #...# #...# #...# .###.',
  V: '#...# #...# #...# #...# #...# .#.#. ..#..',
  W: '#...# #...# #...# #.#.# #.#.# #.#.# .#.#.',
  X: '#...# #...# .#.#. ..#.. .#.#. #...# #...#',
  Y: '#...# #...# #...# .#.#. ..#.. ..#.. ..#..',
  Z: '##### ....# ...#. ..#.. .#... #.... #####',
  a: '..... ..... .###. ....# .#### #...# .####',
  b: '#.... #.... #.##. ##..# #...# #...# ####.',
  c: '..... ..... .###. #.... #.... #...# .###.',
  d: '....# ....# .##.# #..## #...# #...# .####',
  e: '..... ..... .###. #...# ##### #.... .###.',
  f: '..##. .#..# .#... ###.. .#... .#... .#...',
  g: '..... ..... .#### #...# #...# .#### ....# #...# .###.',
  h: '#.... #.... #.##. ##..# #...# #...# #...#',
  i: '..#.. ..... .##.. ..#.. ..#.. ..#.. .###.',
  j: '...#. ..... ..##. ...#. ...#. ...#. ...#. #..#. .##..',
  k: '#.... #.... #..#. #.#.. ##... #.#.. #..#.',
  l: '.##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.',
  m: '..... ..... ##.#. #.#.# #.#.# #...# #...#',
  n: '..... ..... #.##. ##..# #...# #...# #...#',
  o: '..... ..... .###. #...# #...# #...# .###.',
  p: '..... ..... ####. #...# #...# ####. #.... #.... #....',
  q: '..... ..... .#### #...# #...# .#### ....# ....# ....#',
  r: '..... ..... #.##. ##..# #.... #.... #....',
  s: '..... ..... .###. #.... .###. ....# ####.',
  t: '.#... .#... ###.. .#... .#... .#..# ..##.',
  u: '..... ..... #...# #...# #...# #..## .##.#',
  v: '..... ..... #...# #...# #...# .#.#. ..#..',
  w: '..... ..... #...# #...# #.#.# #.#.# .#.#.',
  x: '..... ..... #...# .#.#. ..#.. .#.#. #...#',
  y: '..... ..... #...# #...# #...# .#### ....# #...# .###.',
  z: '..... ..... ##### ...#. ..#.. .#... #####',
  ' ': '..... ..... ..... ..... ..... ..... .....',
  '.': '..... ..... ..... ..... ..... .##.. .##..',
  ',': '..... ..... ..... ..... .##.. ..#.. .#...',
  '-': '..... ..... ..... ##### ..... ..... .....',
  '_': '..... ..... ..... ..... ..... ..... #####',
  '%': '##... ##..# ...#. ..#.. .#... #..## ...##',
  '(': '...#. ..#.. .#... .#... .#... ..#.. ...#.',
  ')': '.#... ..#.. ...#. ...#. ...#. ..#.. .#...',
  '[': '.###. .#... .#... .#... .#... .#... .###.',
  ']': '.###. ...#. ...#. ...#. ...#. ...#. .###.',
  ':': '..... .##.. .##.. ..... .##.. .##.. .....',
  '/': '..... ....# ...#. ..#.. .#... #.... .....',
  '+': '..... ..#.. ..#.. ##### ..#.. ..#.. .....',
  '=': '..... ..... ##### ..... ##### ..... .....',
  '<': '...#. ..#.. .#... #.... .#... ..#.. ...#.',
  '>': '.#... ..#.. ...#. ....# ...#. ..#.. .#...',
  '#': '.#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.',
  '*': '..... ..#.. #.#.# .###. #.#.# ..#.. .....',
  "'": '..#.. ..#.. .#... ..... ..... ..... .....',
  '!': '..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..',
  '?': '.###. #...# ....# ...#. ..#.. ..... ..#..',
};

/** Glyph bitmaps: rows of 5 booleans. Unknown characters draw as '?'. */
const GLYPHS: Map<string, boolean[][]> = new Map(
  Object.entries(GLYPH_ROWS).map(([ch, rows]) => [ch, rows.split(' ').map((row) => [...row].map((c) => c === '#'))]),
);

/** Horizontal advance of one character at scale 1 (5 pixels of glyph and 1 of spacing). */
const ADVANCE = 6;

function textWidth(text: string, scale: number): number {
  return text.length === 0 ? 0 : (text.length * ADVANCE - 1) * scale;
}

/** `text` cut with ".." so that it is at most `maxWidth` pixels wide. */
function fitText(text: string, maxWidth: number, scale: number): string {
  if (textWidth(text, scale) <= maxWidth) return text;
  const chars = Math.max(0, Math.floor((maxWidth / scale + 1) / ADVANCE) - 2);
  return text.slice(0, chars) + '..';
}

// ---- canvas ----------------------------------------------------------------------------------------

interface Canvas {
  width: number;
  height: number;
  data: Uint8Array;
}

function blend(c: Canvas, x: number, y: number, color: Rgb, alpha: number): void {
  if (x < 0 || y < 0 || x >= c.width || y >= c.height || alpha <= 0) return;
  const o = (y * c.width + x) * 3;
  const a = Math.min(1, alpha);
  for (let k = 0; k < 3; k++) c.data[o + k] = Math.round(c.data[o + k] * (1 - a) + color[k] * a);
}

function fillRect(c: Canvas, x: number, y: number, w: number, h: number, color: Rgb): void {
  for (let j = y; j < y + h; j++) for (let i = x; i < x + w; i++) blend(c, i, j, color, 1);
}

function strokeRect(c: Canvas, x: number, y: number, w: number, h: number, color: Rgb): void {
  fillRect(c, x, y, w, 1, color);
  fillRect(c, x, y + h - 1, w, 1, color);
  fillRect(c, x, y, 1, h, color);
  fillRect(c, x + w - 1, y, 1, h, color);
}

/** Text with its top-left corner at (x, y); `vertical` draws it rotated to read bottom to top from (x, y). */
function drawText(c: Canvas, text: string, x: number, y: number, color: Rgb, scale = 1, vertical = false): void {
  [...text].forEach((ch, n) => {
    const glyph = GLYPHS.get(ch) ?? GLYPHS.get('?')!;
    glyph.forEach((row, gy) =>
      row.forEach((on, gx) => {
        if (!on) return;
        const u = (n * ADVANCE + gx) * scale;
        const v = gy * scale;
        if (vertical) fillRect(c, x + v, y - u - scale, scale, scale, color);
        else fillRect(c, x + u, y + v, scale, scale, color);
      }),
    );
  });
}

/**
 * An anti-aliased polyline: each pixel's coverage is the distance from its center to the nearest segment
 * against the half width, taken as a maximum over segments (so joints are not painted twice), then blended
 * once. Pixels within width/2 − ½ of the line get the exact color.
 */
function drawPolyline(c: Canvas, xs: readonly number[], ys: readonly number[], color: Rgb, width: number): void {
  const half = width / 2;
  const pad = Math.ceil(half + 1);
  // Reductions rather than Math.min(...xs): a curve of a large test set has too many points to spread.
  const x0 = Math.max(0, Math.floor(xs.reduce((a, b) => Math.min(a, b))) - pad);
  const y0 = Math.max(0, Math.floor(ys.reduce((a, b) => Math.min(a, b))) - pad);
  const x1 = Math.min(c.width - 1, Math.ceil(xs.reduce((a, b) => Math.max(a, b))) + pad);
  const y1 = Math.min(c.height - 1, Math.ceil(ys.reduce((a, b) => Math.max(a, b))) + pad);
  if (x1 < x0 || y1 < y0) return;
  const w = x1 - x0 + 1;
  const coverage = new Float32Array(w * (y1 - y0 + 1));
  for (let s = 0; s + 1 < xs.length || (s === 0 && xs.length === 1); s++) {
    const ax = xs[s];
    const ay = ys[s];
    const bx = xs[Math.min(s + 1, xs.length - 1)];
    const by = ys[Math.min(s + 1, ys.length - 1)];
    const dx = bx - ax;
    const dy = by - ay;
    const len2 = dx * dx + dy * dy;
    const sx0 = Math.max(x0, Math.floor(Math.min(ax, bx) - pad));
    const sx1 = Math.min(x1, Math.ceil(Math.max(ax, bx) + pad));
    const sy0 = Math.max(y0, Math.floor(Math.min(ay, by) - pad));
    const sy1 = Math.min(y1, Math.ceil(Math.max(ay, by) + pad));
    for (let py = sy0; py <= sy1; py++) {
      for (let px = sx0; px <= sx1; px++) {
        const cx = px + 0.5;
        const cy = py + 0.5;
        const t = len2 === 0 ? 0 : Math.max(0, Math.min(1, ((cx - ax) * dx + (cy - ay) * dy) / len2));
        const dist = Math.hypot(cx - ax - t * dx, cy - ay - t * dy);
        const cov = Math.max(0, Math.min(1, half + 0.5 - dist));
        const k = (py - y0) * w + (px - x0);
        if (cov > coverage[k]) coverage[k] = cov;
      }
    }
  }
  for (let py = y0; py <= y1; py++) {
    for (let px = x0; px <= x1; px++) blend(c, px, py, color, coverage[(py - y0) * w + (px - x0)]);
  }
}

function dashedLine(c: Canvas, ax: number, ay: number, bx: number, by: number, color: Rgb, dash: number): void {
  const len = Math.hypot(bx - ax, by - ay);
  for (let d = 0; d < len; d += 2 * dash) {
    const t0 = d / len;
    const t1 = Math.min(1, (d + dash) / len);
    drawPolyline(c, [ax + t0 * (bx - ax), ax + t1 * (bx - ax)], [ay + t0 * (by - ay), ay + t1 * (by - ay)], color, 1);
  }
}

// ---- the plot --------------------------------------------------------------------------------------

/** Each model's color: models take colors in order of first appearance over all panels. */
export function rocPlotColors(curves: readonly RocPanel[], colors: readonly Rgb[] = ROC_PALETTE): Map<string, Rgb> {
  const out = new Map<string, Rgb>();
  for (const panel of curves) {
    for (const model of panel.models) {
      if (out.has(model.name)) continue;
      const n = out.size;
      out.set(model.name, n < colors.length ? colors[n] : generatedColor(n - colors.length));
    }
  }
  return out;
}

/** Further distinct colors past the palette: hues a golden angle apart, medium saturation and lightness. */
function generatedColor(n: number): Rgb {
  const h = (n * 137.508 + 15) % 360;
  const s = 0.65;
  const l = 0.45;
  const f = (k: number) => {
    const kk = (k + h / 30) % 12;
    return Math.round(255 * (l - s * Math.min(l, 1 - l) * Math.max(-1, Math.min(kk - 3, 9 - kk, 1))));
  };
  return [f(0), f(8), f(4)];
}

function checkPanel(panel: RocPanel, p: number): void {
  for (const m of panel.models) {
    const where = `rocPlotPng: panel ${p} (${JSON.stringify(panel.label)}), model ${JSON.stringify(m.name)}`;
    if (m.fpr.length !== m.tpr.length) throw new EvalInputError(`${where}: ${m.fpr.length} FPR values but ${m.tpr.length} TPR values`);
    if (m.fpr.length === 0) throw new EvalInputError(`${where}: empty curve`);
    for (let i = 0; i < m.fpr.length; i++) {
      if (!(m.fpr[i] >= 0 && m.fpr[i] <= 1 && m.tpr[i] >= 0 && m.tpr[i] <= 1)) {
        throw new EvalInputError(`${where}: point ${i} (${m.fpr[i]}, ${m.tpr[i]}) is outside [0, 1]²`);
      }
    }
  }
}

function drawPanel(c: Canvas, panel: RocPanel, ox: number, oy: number, size: number, colors: Map<string, Rgb>): void {
  const titleScale = size >= 240 ? 2 : 1;
  const title = fitText(panel.label, size - 8, titleScale);
  drawText(c, title, ox + Math.floor((size - textWidth(title, titleScale)) / 2), oy + 6, INK, titleScale);

  const left = ox + 40;
  const top = oy + 7 * titleScale + 14;
  const side = Math.min(size - 40 - 12, size - (7 * titleScale + 14) - 34);
  const bottom = top + side;
  const right = left + side;
  const X = (fpr: number) => left + fpr * side;
  const Y = (tpr: number) => bottom - tpr * side;

  for (let k = 0; k <= 5; k++) {
    const v = k / 5;
    const tick = v.toFixed(1);
    const px = Math.round(X(v));
    const py = Math.round(Y(v));
    if (k > 0 && k < 5) {
      fillRect(c, px, top + 1, 1, side - 1, GRID);
      fillRect(c, left + 1, py, side - 1, 1, GRID);
    }
    fillRect(c, px, bottom, 1, 4, INK);
    fillRect(c, left - 4, py, 4, 1, INK);
    drawText(c, tick, px - Math.floor(textWidth(tick, 1) / 2), bottom + 6, INK);
    drawText(c, tick, left - 7 - textWidth(tick, 1), py - 3, INK);
  }
  drawText(c, 'FPR', left + Math.floor((side - textWidth('FPR', 1)) / 2), bottom + 16, INK);
  drawText(c, 'TPR', left - 38, top + Math.floor((side + textWidth('TPR', 1)) / 2), INK, 1, true);
  dashedLine(c, X(0), Y(0), X(1), Y(1), CHANCE, 4);

  // The box first, so that a curve running along an axis (a perfect model) stays visible.
  strokeRect(c, left, top, side + 1, side + 1, INK);
  for (const m of panel.models) drawPolyline(c, m.fpr.map(X), m.tpr.map(Y), colors.get(m.name)!, 2);

  // Legend, bottom right inside the axes: a swatch and "name AUC 0.889" per model.
  const lineHeight = 11;
  const maxText = side - 8 - 16;
  const lines = panel.models.map((m) => {
    const auc = Number.isFinite(m.auc) ? ` AUC ${m.auc.toFixed(3)}` : ' AUC n/a';
    const name = fitText(m.name, maxText - textWidth(auc, 1) - ADVANCE, 1);
    return { text: name + auc, color: colors.get(m.name)! };
  });
  if (lines.length === 0) return;
  const boxW = Math.max(...lines.map((l) => textWidth(l.text, 1))) + 16 + 6;
  const boxH = lines.length * lineHeight + 5;
  const bx = right - 4 - boxW;
  const by = bottom - 4 - boxH;
  fillRect(c, bx, by, boxW, boxH, BACKGROUND);
  strokeRect(c, bx, by, boxW, boxH, CHANCE);
  lines.forEach((line, n) => {
    const ly = by + 4 + n * lineHeight;
    fillRect(c, bx + 4, ly, 10, 7, line.color);
    drawText(c, line.text, bx + 18, ly, INK);
  });
}

/**
 * A PNG (8-bit RGB) of ROC curves: one panel per entry of `curves`, laid out in a grid, each with the
 * label as title, FPR/TPR axes with ticks, the chance diagonal, each model's curve (2 px, anti-aliased)
 * and a legend with its AUC.
 */
export function rocPlotPng(curves: readonly RocPanel[], opts: RocPlotOptions = {}): Uint8Array {
  if (curves.length === 0) throw new EvalInputError('rocPlotPng: no panel to draw');
  const size = Math.round(opts.panelSize ?? 300);
  if (!(size >= 160)) throw new EvalInputError(`rocPlotPng: panelSize must be at least 160, got ${opts.panelSize}`);
  const columns = Math.min(curves.length, opts.columns ?? Math.ceil(Math.sqrt(curves.length)));
  if (!Number.isInteger(columns) || columns < 1) throw new EvalInputError(`rocPlotPng: columns must be a positive integer, got ${opts.columns}`);
  curves.forEach(checkPanel);
  const rows = Math.ceil(curves.length / columns);
  const canvas: Canvas = { width: columns * size, height: rows * size, data: new Uint8Array(columns * size * rows * size * 3) };
  for (let i = 0; i < canvas.data.length; i += 3) canvas.data.set(BACKGROUND, i);
  const colors = rocPlotColors(curves, opts.colors ?? ROC_PALETTE);
  curves.forEach((panel, p) => drawPanel(canvas, panel, (p % columns) * size, Math.floor(p / columns) * size, size, colors));
  return encode({ width: canvas.width, height: canvas.height, data: canvas.data, depth: 8, channels: 3 });
}
