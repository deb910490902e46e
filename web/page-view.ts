// Drawing the page: the image with window/level, the heat map overlay, the per-finding bars and the
// results table, and the table as CSV. DOM only; no model code.

import { windowValue } from '../datasets/dicom.js';
import type { Analysis, Display } from './page-image.js';
import type { PageModel } from './page-model.js';

export interface Row {
  name: string;
  analysis: Analysis | null;
  error: string | null;
}

/** Draws the image at its own size; gray images through the window (center, width). */
export function drawImage(canvas: HTMLCanvasElement, d: Display, center = d.center, width = d.windowWidth): void {
  canvas.width = d.width;
  canvas.height = d.height;
  const ctx = canvas.getContext('2d')!;
  const img = ctx.createImageData(d.width, d.height);
  const n = d.width * d.height;
  for (let i = 0; i < n; i++) {
    let r: number;
    let g: number;
    let b: number;
    if (d.values) {
      let v = windowValue(d.values[i], center, Math.max(1, width));
      if (d.invert) v = 1 - v;
      r = g = b = v;
    } else {
      r = d.rgb![i];
      g = d.rgb![n + i];
      b = d.rgb![2 * n + i];
    }
    img.data[4 * i] = Math.round(r * 255);
    img.data[4 * i + 1] = Math.round(g * 255);
    img.data[4 * i + 2] = Math.round(b * 255);
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

/** A perceptually ordered dark-to-bright colormap (blue → red → yellow), for the heat map. */
function heatColor(v: number): [number, number, number] {
  const stops: [number, number, number][] = [[10, 7, 60], [120, 28, 110], [214, 60, 50], [250, 150, 30], [252, 240, 120]];
  const x = Math.min(1, Math.max(0, v)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  return [0, 1, 2].map((c) => Math.round(stops[i][c] + f * (stops[i + 1][c] - stops[i][c]))) as [number, number, number];
}

/** Draws a heat map (values in [0, 1]) at width × height, opaque: its opacity is the canvas's CSS opacity. */
export function drawHeat(canvas: HTMLCanvasElement, heat: Float32Array, width: number, height: number): void {
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d')!;
  const img = ctx.createImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    const [r, g, b] = heatColor(heat[i]);
    img.data[4 * i] = r;
    img.data[4 * i + 1] = g;
    img.data[4 * i + 2] = b;
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

/** 'positive' / 'negative' at the run's threshold, or null without one. */
export function decision(model: PageModel, label: string, p: number): 'positive' | 'negative' | null {
  // train stores "NaN" (the validation split had one class) and "Infinity" (no threshold beat chance).
  const t = Number(model.thresholds?.[label]);
  if (Number.isNaN(t)) return null;
  return p >= t ? 'positive' : 'negative';
}

/** One row per finding: name, a probability bar, the value, and the decision at the threshold. */
export function renderFindings(list: HTMLElement, model: PageModel, a: Analysis): void {
  list.replaceChildren();
  model.labels.forEach((label, j) => {
    const p = a.probabilities[j];
    const t = Number(model.thresholds?.[label]);
    const d = decision(model, label, p);
    const item = el('li', { class: `finding ${d ?? 'undecided'}` });
    item.append(el('span', { class: 'label' }, label));
    const meter = el('meter', { min: '0', max: '1', value: String(p), 'aria-label': `${label} probability` });
    item.append(meter, el('span', { class: 'prob' }, p.toFixed(3)));
    const why = t === Infinity ? 'no threshold beat chance on the validation split' : `threshold ${t.toFixed(3)}`;
    item.append(el('span', { class: 'decision' }, d ? `${d} (${why})` : model.thresholds ? 'no threshold (one class in the validation split)' : 'no threshold stored'));
    list.append(item);
  });
}

/** The results table: one row per image, one column per label (probability and decision). */
export function renderTable(table: HTMLTableElement, model: PageModel, rows: Row[], onSelect: (i: number) => void, selected: number): void {
  const head = el('tr');
  head.append(el('th', { scope: 'col' }, 'image'));
  for (const l of model.labels) head.append(el('th', { scope: 'col' }, l));
  const body = el('tbody');
  rows.forEach((r, i) => {
    const tr = el('tr', i === selected ? { 'aria-selected': 'true', class: 'selected' } : {});
    const name = el('th', { scope: 'row' });
    const button = el('button', { type: 'button', class: 'link' }, r.name);
    button.addEventListener('click', () => onSelect(i));
    name.append(button);
    tr.append(name);
    if (r.error) tr.append(el('td', { colspan: String(model.labels.length), class: 'error' }, r.error));
    else model.labels.forEach((label, j) => {
      const p = r.analysis!.probabilities[j];
      const d = decision(model, label, p);
      tr.append(el('td', { class: d ?? '' }, `${p.toFixed(3)}${d === 'positive' ? ' +' : d === 'negative' ? ' −' : ''}`));
    });
    body.append(tr);
  });
  const thead = el('thead');
  thead.append(head);
  table.replaceChildren(thead, body);
}

function csvCell(v: string): string {
  return /[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

/** image, then per label its probability and its decision at the stored threshold, then any error. */
export function resultsCsv(model: PageModel, rows: Row[]): string {
  const header = ['image', ...model.labels.flatMap((l) => [`${l} probability`, `${l} at threshold`]), 'error'];
  const lines = [header.map(csvCell).join(',')];
  for (const r of rows) {
    const cells = [r.name];
    model.labels.forEach((label, j) => {
      const p = r.analysis?.probabilities[j];
      cells.push(p === undefined ? '' : String(p), p === undefined ? '' : (decision(model, label, p) ?? ''));
    });
    cells.push(r.error ?? '');
    lines.push(cells.map(csvCell).join(','));
  }
  return `${lines.join('\n')}\n`;
}
