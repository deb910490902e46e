// The figures: font metrics against resvg's own layout of the same font, the ROC band against a
// brute-force reading of the full curve, and rendered ROC / training-size / training-curve figures
// checked in their SVG text and PNG pixels. Pure CPU.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import { decode } from 'fast-png';
import { describe, expect, it } from 'vitest';
import { bootstrapIndices, compareModels } from '../../eval/bootstrap.js';
import { orderByScoreDesc, rocAuc, rocCurve } from '../../eval/metrics.js';
import { mulberry32 } from '../../engine/prng.js';
import { parseFontMetrics, textWidth } from '../../eval/plots/font-metrics.js';
import { rocBand, tprOnGrid } from '../../eval/roc-band.js';
import { PALETTE, rocSpec, trainingCurvesSpec, trainingSizeSpec, type RocFigurePanel } from '../../eval/plots/specs.js';
import { PNG_SCALE, renderFigure } from '../../eval/plots/render-node.js';

const fontDir = join(dirname(createRequire(import.meta.url).resolve('dejavu-fonts-ttf/package.json')), 'ttf');

describe('font metrics', () => {
  it('widths match the advance of the same text laid out by resvg', () => {
    const file = join(fontDir, 'DejaVuSans.ttf');
    const font = parseFontMetrics(readFileSync(file));
    expect(font.unitsPerEm).toBe(2048);
    for (const text of ['Sensitivity', '1 − Specificity', 'AUC 0.889 (0.850–0.920)', 'MMMM', 'iiii']) {
      // Two copies of a glyph-free marker bracket the text; the distance between them is its advance.
      const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="4000" height="200"><text x="10" y="150" font-family="DejaVu Sans" font-size="100">|${text}|</text></svg>`;
      const bar = `<svg xmlns="http://www.w3.org/2000/svg" width="4000" height="200"><text x="10" y="150" font-family="DejaVu Sans" font-size="100">||</text></svg>`;
      const opts = { font: { loadSystemFonts: false, fontFiles: [file], defaultFontFamily: 'DejaVu Sans' } };
      const full = new Resvg(svg, opts).getBBox()!.width;
      const bars = new Resvg(bar, opts).getBBox()!.width;
      expect(textWidth(font, text, 100)).toBeCloseTo(full - bars, 0);
    }
  });
});

/** Scores with a given separation for a 0/1 truth vector. */
function scored(y: number[], signal: number, random: () => number): number[] {
  return y.map((v) => v * signal + random());
}

describe('rocBand', () => {
  const random = mulberry32(9);
  const y = Array.from({ length: 120 }, () => (random() < 0.3 ? 1 : 0));
  const s = scored(y, 0.4, random).map((v) => Math.round(v * 20) / 20); // ties on purpose

  it('on the unresampled data reads the ROC curve: linear between vertices, top of vertical steps', () => {
    const grid = Array.from({ length: 41 }, (_, k) => k / 40);
    const tpr = tprOnGrid(orderByScoreDesc(s), y, s, null, grid)!;
    const c = rocCurve(y, s);
    grid.forEach((x, g) => {
      // Brute force on the curve's points: the highest point at exactly x, else interpolate.
      const at = c.fpr.flatMap((f, k) => (f === x ? [c.tpr[k]] : []));
      let want: number;
      if (at.length) want = Math.max(...at);
      else {
        const k = c.fpr.findIndex((f) => f > x);
        want = c.tpr[k - 1] + ((c.tpr[k] - c.tpr[k - 1]) * (x - c.fpr[k - 1])) / (c.fpr[k] - c.fpr[k - 1]);
      }
      expect(tpr[g], `at ${x}`).toBeCloseTo(want, 12);
    });
  });

  it('the band holds the curve, widens with fewer images, and skips one-class resamples', () => {
    const indices = bootstrapIndices(y.length, 300, 4);
    const band = rocBand(y, s, indices)!;
    expect(band.valid).toBe(300);
    const curve = tprOnGrid(orderByScoreDesc(s), y, s, null, band.fpr)!;
    let inside = 0;
    band.fpr.forEach((_, g) => {
      expect(band.lo[g]).toBeLessThanOrEqual(band.hi[g]);
      if (curve[g] >= band.lo[g] - 1e-12 && curve[g] <= band.hi[g] + 1e-12) inside++;
    });
    expect(inside).toBeGreaterThanOrEqual(band.fpr.length - 2);
    const width = (b: NonNullable<ReturnType<typeof rocBand>>) => b.hi.reduce((a, h, g) => a + h - b.lo[g], 0);
    const small = rocBand(y.slice(0, 40), s.slice(0, 40), bootstrapIndices(40, 300, 4))!;
    expect(width(small)).toBeGreaterThan(width(band));
    // Missing truths (NaN) are left out; with one positive, some resamples have no positive.
    const one = y.map((v, i) => (i < 20 ? (i === 3 ? 1 : 0) : NaN));
    const b = rocBand(one, s, bootstrapIndices(y.length, 200, 1))!;
    expect(b.valid).toBeGreaterThan(0);
    expect(b.valid).toBeLessThan(200);
  });
});

function countNear(png: ReturnType<typeof decode>, hex: string, tolerance = 40): number {
  const rgb = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  let count = 0;
  for (let o = 0; o < png.data.length; o += png.channels) {
    if (Math.abs(png.data[o] - rgb[0]) + Math.abs(png.data[o + 1] - rgb[1]) + Math.abs(png.data[o + 2] - rgb[2]) <= tolerance) count++;
  }
  return count;
}

describe('figures', () => {
  const random = mulberry32(4);
  const labels = ['Atelectasis', 'Cardiomegaly', 'Pleural Effusion'];
  const signals = { 'ImageNet-21K': 0.5, DINOv2: 1.2 };
  const n = 150;
  const truth = Array.from({ length: n }, () => labels.map(() => (random() < 0.35 ? 1 : 0)));
  const probs = Object.fromEntries(Object.entries(signals).map(([m, sig]) => [m, truth.map((r) => r.map((v) => v * sig + random()))]));
  const cmp = compareModels(labels, truth, probs, { resamples: 200, seed: 1 });
  const indices = bootstrapIndices(n, 200, 1);
  const panels: RocFigurePanel[] = labels.map((label, j) => {
    const yj = truth.map((r) => r[j]);
    return {
      label,
      n,
      positives: yj.filter((v) => v === 1).length,
      models: Object.keys(signals).map((name) => {
        const sj = probs[name].map((r) => r[j]);
        const c = rocCurve(yj, sj);
        const ci = cmp.results[name].labels[j].stats!.auc;
        return { name, fpr: c.fpr, tpr: c.tpr, auc: rocAuc(yj, sj), aucLo: ci.lo, aucHi: ci.hi, band: rocBand(yj, sj, indices) };
      }),
    };
  });

  it('ROC: axes, n and positives per panel, AUC with its interval, each model in its color, SVG beside PNG', async () => {
    const { svg, png } = await renderFigure(rocSpec(panels, { title: 'ROC' }));
    expect(svg).toContain('Sensitivity');
    expect(svg).toContain('1 − Specificity');
    for (const p of panels) {
      expect(svg).toContain(`${p.label} (n = ${n}, ${p.positives} positive)`);
      for (const m of p.models) expect(svg).toContain(`${m.name} ${m.auc.toFixed(3)} (${m.aucLo!.toFixed(3)}–${m.aucHi!.toFixed(3)})`);
      expect(svg).toContain('AUC (95% CI)');
    }
    const image = decode(png);
    const w = Number(/width="(\d+(?:\.\d+)?)"/.exec(svg)![1]);
    expect(image.width).toBe(Math.round(w * PNG_SCALE));
    // Both models' curves (and their bands, lighter) are drawn in their palette colors.
    expect(countNear(image, PALETTE[0])).toBeGreaterThan(3000);
    expect(countNear(image, PALETTE[1])).toBeGreaterThan(3000);
  });

  it('training size: one panel per dataset, interval rules, the fractions as percent ticks', async () => {
    const points = ['VinDr-CXR', 'ChestX-ray14'].flatMap((dataset) => ['DINOv2', 'ImageNet-21K'].flatMap((init, k) => [0.01, 0.1, 1].map((fraction) => {
      const mean = 0.7 + 0.05 * Math.log10(fraction * 100) + 0.02 * k;
      return { dataset, init, fraction, mean, lo: mean - 0.02, hi: mean + 0.02 };
    })));
    const { svg, png } = await renderFigure(trainingSizeSpec(points));
    for (const t of ['VinDr-CXR', 'ChestX-ray14', '1%', '10%', '100%', 'Mean AUC (95% interval)', 'Initialization', 'DINOv2']) expect(svg).toContain(t);
    const image = decode(png);
    expect(countNear(image, PALETTE[0])).toBeGreaterThan(500);
    expect(countNear(image, PALETTE[1])).toBeGreaterThan(500);
  });

  it('training curves: loss and validation AUC per epoch, the best epoch marked', async () => {
    const history = [1, 2, 3, 4].map((epoch) => ({ epoch, trainLoss: 1 / epoch, valLoss: 1.1 / epoch + 0.1, valAuc: [0.6, 0.7, 0.74, 0.72][epoch - 1], best: epoch === 3 }));
    const { svg } = await renderFigure(trainingCurvesSpec(history, { title: 'run' }));
    for (const t of ['Epoch', 'Validation mean AUC', 'Training loss', 'Validation loss', 'best: epoch 3, 0.740']) expect(svg).toContain(t);
  });

  it('rejects bad input', () => {
    expect(() => rocSpec([])).toThrow(/no panel/);
    expect(() => rocSpec([{ label: 'x', n: 2, positives: 1, models: [{ name: 'm', fpr: [0, 1], tpr: [0], auc: 0.5 }] }])).toThrow(/"m"/);
    expect(() => rocSpec([{ label: 'x', n: 2, positives: 1, models: [{ name: 'm', fpr: [0, NaN], tpr: [0, 1], auc: 0.5 }] }])).toThrow(/outside/);
    expect(() => trainingSizeSpec([])).toThrow(/no point/);
    expect(() => trainingCurvesSpec([])).toThrow(/no epoch/);
  });
});
