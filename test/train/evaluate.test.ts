// `vitgpu eval`, `compare` and `predict` on two small trained runs, as users run them.

import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode } from 'fast-png';
import { beforeAll, describe, expect, it } from 'vitest';
import { vitgpu } from '../cli-runner.js';
import { writeSyntheticDataset } from '../../train/demo-data-node.js';

let dir: string;
let csv: string;


beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vitgpu-eval-'));
  csv = await writeSyntheticDataset(join(dir, 'data'), { images: 100, size: 40, seed: 5 });
  for (const [name, seed] of [['alpha', '1'], ['beta', '2']]) {
    const r = await vitgpu(['train', '--data', csv, '--init', 'random', '--arch', 'vit-tiny-test', '--image-size', '32', '--epochs', '2',
      '--batch-size', '16', '--lr', '1e-3', '--seed', seed, '--workers', '1', '--out', join(dir, name)]);
    expect(r.code, r.stderr).toBe(0);
  }
}, 300_000);

describe('evaluation commands', () => {
  it('eval writes predictions, metrics, the table and ROC curves for the test split', async () => {
    const out = join(dir, 'eval-alpha');
    const r = await vitgpu(['eval', '--run', join(dir, 'alpha'), '--out', out, '--resamples', '200']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\| cardiomegaly \| \d+\.\d\d ± \d+\.\d\d \|/);
    const lines = readFileSync(join(out, 'predictions.csv'), 'utf8').trim().split('\n');
    expect(lines[0]).toBe('image,cardiomegaly_true,cardiomegaly_prob,pleural_effusion_true,pleural_effusion_prob,nodule_true,nodule_prob,pneumothorax_true,pneumothorax_prob');
    expect(lines).toHaveLength(1 + 20); // the test split: the last 20% of 100
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    expect(metrics.split).toBe('test');
    expect(metrics.results.alpha.resamples).toBe(200);
    for (const l of metrics.results.alpha.point.labels) expect(['ok', 'single-class']).toContain(l.status);
    const png = decode(readFileSync(join(out, 'roc.png')));
    expect(png.width).toBeGreaterThan(200);
    expect(readFileSync(join(out, 'table.md'), 'utf8')).toMatch(/Youden threshold/);
  }, 120_000);

  it('compare evaluates runs on the same resamples and reports paired p-values', async () => {
    const out = join(dir, 'cmp');
    const r = await vitgpu(['compare', join(dir, 'alpha'), join(dir, 'beta'), '--out', out, '--resamples', '300', '--names', 'A,B']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\| Label \| A AUC \(%\) \| B AUC \(%\) \| p A > B \(BH\) \|/);
    expect(r.stdout).toMatch(/\| Mean \|/);
    for (const f of ['predictions-A.csv', 'predictions-B.csv', 'table.md', 'metrics.json', 'roc.png', 'roc.svg']) expect(existsSync(join(out, f)), f).toBe(true);
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    const pair = metrics.pairs.find((p: { a: string; b: string }) => p.a === 'A' && p.b === 'B');
    expect(pair.meanAuc.p).toBeGreaterThanOrEqual(0);
    expect(pair.meanAuc.p).toBeLessThanOrEqual(1);
    const one = await vitgpu(['compare', join(dir, 'alpha'), '--out', out]);
    expect(one.stderr).toMatch(/at least two runs/);
  }, 120_000);

  it('predict prints per-label probabilities', async () => {
    const img = join(dir, 'data', 'images', 'img0003.png');
    const r = await vitgpu(['predict', '--run', join(dir, 'alpha'), img, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const line = JSON.parse(r.stdout.trim());
    expect(line.image).toBe(img);
    expect(Object.keys(line.probabilities)).toEqual(['cardiomegaly', 'pleural_effusion', 'nodule', 'pneumothorax']);
    for (const p of Object.values(line.probabilities) as number[]) expect(p > 0 && p < 1).toBe(true);
    const bad = await vitgpu(['predict', '--run', join(dir, 'nope'), img]);
    expect(bad.stderr).toMatch(/nope: no best\.safetensors/);
  }, 60_000);
});
