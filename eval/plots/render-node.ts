// Figures on disk (Node): a Vega-Lite spec compiled by vega-lite, laid out and drawn to SVG by vega
// (headless, renderer 'none'), and rasterized to PNG by resvg. The PNG is set in DejaVu Sans from the
// `dejavu-fonts-ttf` package and nothing else: system fonts are not loaded, so a figure renders the
// same on every machine, and vega measures text with the same font's advance widths (font-metrics.ts).

import { readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { FIGURE_FONT } from './specs.js';
import { parseFontMetrics, textWidth, type FontMetrics } from './font-metrics.js';

/** Pixels per SVG unit in the PNG: 3 gives about 300 dpi at the size the SVG is shown. */
export const PNG_SCALE = 3;

interface Fonts {
  files: string[];
  regular: FontMetrics;
  bold: FontMetrics;
}

let fonts: Fonts | null = null;

function loadFonts(): Fonts {
  if (fonts) return fonts;
  const dir = join(dirname(createRequire(import.meta.url).resolve('dejavu-fonts-ttf/package.json')), 'ttf');
  const regular = join(dir, 'DejaVuSans.ttf');
  const bold = join(dir, 'DejaVuSans-Bold.ttf');
  fonts = { files: [regular, bold], regular: parseFontMetrics(readFileSync(regular)), bold: parseFontMetrics(readFileSync(bold)) };
  const f = fonts;
  // Vega's own hook for a text measurer when no canvas is available (as vl-convert uses it).
  const metrics = (vega as unknown as { textMetrics: { width: (item: Record<string, unknown>, text: unknown) => number } }).textMetrics;
  metrics.width = (item, text) => {
    const size = item.fontSize != null ? Number(item.fontSize) || 0 : 11;
    const weight = item.fontWeight;
    const heavy = weight === 'bold' || weight === 'bolder' || (typeof weight === 'number' && weight >= 600) || Number(weight) >= 600;
    const s = text == null ? '' : String(text).trim();
    return textWidth(heavy ? f.bold : f.regular, s, size);
  };
  return f;
}

/** The spec as SVG markup and as PNG bytes. */
export async function renderFigure(spec: TopLevelSpec): Promise<{ svg: string; png: Uint8Array }> {
  const f = loadFonts();
  // Layers that share a color scale but hide their part of the legend make vega-lite warn on every
  // figure; those warnings are by design here, errors still throw.
  const quiet = { level() { return quiet; }, warn() { return quiet; }, info() { return quiet; }, debug() { return quiet; }, error(...args: unknown[]): never { throw new Error(args.map(String).join(' ')); } };
  const compiled = compile(spec, { logger: quiet as never }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  let svg: string;
  try {
    svg = await view.toSVG();
  } finally {
    view.finalize();
  }
  const png = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: PNG_SCALE },
    background: 'white',
    font: { loadSystemFonts: false, fontFiles: f.files, defaultFontFamily: FIGURE_FONT, sansSerifFamily: FIGURE_FONT },
  }).render().asPng();
  return { svg, png: new Uint8Array(png) };
}

async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

/** Writes BASE.svg and BASE.png (each atomically) and returns both paths. */
export async function writeFigure(base: string, spec: TopLevelSpec): Promise<string[]> {
  const { svg, png } = await renderFigure(spec);
  await mkdir(dirname(base), { recursive: true });
  await writeAtomic(`${base}.svg`, svg);
  await writeAtomic(`${base}.png`, png);
  return [`${base}.png`, `${base}.svg`];
}
