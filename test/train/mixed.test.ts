// `vitgpu train --precision mixed` as users run it: it learns as well as f32 on synthetic data (the
// same settings and seed; validation AUC within noise), an initial loss scale far too large makes the
// first steps overflow, which are skipped, counted in the log and lower the scale before training
// proceeds, and a resume that changes the precision is refused. eval/predict/embed take --precision too.

import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { vitgpu } from '../cli-runner.js';
import { writeSyntheticDataset } from '../../train/demo-data-node.js';
import { expectClose } from '../helpers.js';

let dir: string;
let csv: string;
const common = ['--init', 'random', '--arch', 'vit-tiny-test', '--image-size', '32', '--batch-size', '16', '--seed', '7', '--workers', '1',
  '--labels', 'cardiomegaly,pleural_effusion', '--lr', '1e-3', '--warmup-steps', '20', '--patience', '0'];
const logOf = (out: string) => readFileSync(join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vitgpu-mixed-'));
  csv = await writeSyntheticDataset(join(dir, 'data'), { images: 160, size: 48, seed: 3 });
});

describe('vitgpu train --precision mixed', () => {
  it('reaches the validation AUC of f32 within noise, with no skipped steps at the default scale', async () => {
    const best: Record<string, number> = {};
    for (const precision of ['f32', 'mixed']) {
      const out = join(dir, `run-${precision}`);
      const r = await vitgpu(['train', '--data', csv, ...common, '--epochs', '8', '--precision', precision, '--out', out]);
      expect(r.code, r.stderr).toBe(0);
      const log = logOf(out);
      expect(log).toHaveLength(8);
      best[precision] = Math.max(...log.map((e) => e.valAuc));
      console.log(`${precision}: validation mean AUC by epoch ${log.map((e) => e.valAuc.toFixed(3)).join(' ')}`);
      if (precision === 'mixed') {
        expect(log.every((e) => e.skippedSteps === 0 && e.lossScale === 65536)).toBe(true);
        expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).train.precision).toBe('mixed');
      } else expect(log[0].lossScale).toBeUndefined();
    }
    expect(best.mixed).toBeGreaterThan(0.65);
    // Same data, seed and settings: the two runs differ only by f16 rounding, so their best validation
    // AUCs (60 validation images) differ by noise; 0.05 is a fraction of the bootstrap spread at this size.
    expect(Math.abs(best.mixed - best.f32)).toBeLessThan(0.05);
  }, 900_000);

  it('a huge initial loss scale: the first steps overflow, are skipped and reported, the scale backs off, training proceeds', async () => {
    const out = join(dir, 'run-overflow');
    const r = await vitgpu(['train', '--data', csv, ...common, '--batch-size', '8', '--epochs', '4', '--precision', 'mixed', '--loss-scale', String(2 ** 30), '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const log = logOf(out);
    expect(log).toHaveLength(4);
    const skipped = log[3].skippedSteps;
    expect(log[0].skippedSteps).toBeGreaterThan(3);
    expect(log[3].lossScale).toBe(2 ** (30 - skipped)); // halved once per skipped step (no growth within 2000 steps)
    expect(log[2].skippedSteps).toBe(skipped); // once the scale fits, no more overflow
    expect(log[3].steps).toBe(4 * 12 - skipped); // 96 training images in batches of 8: the other steps were taken
    expect(r.stderr).toMatch(new RegExp(`loss scale ${2 ** (30 - skipped)}, ${skipped} skipped steps`));
    console.log(`overflow run: ${skipped} skipped steps, scale 2^30 -> 2^${30 - skipped}; valid AUC ${log.map((e) => e.valAuc.toFixed(3)).join(' ')}`);

    // A resume that changes the precision (or the loss scale) contradicts the run.
    const again = await vitgpu(['train', '--resume', '--out', out, '--epochs', '4', '--precision', 'f32']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/--precision f32 \(the run has mixed\)/);
  }, 600_000);

  it('eval, predict and embed take --precision; a bad value names the option', async () => {
    const run = join(dir, 'run-mixed');
    const evalMixed = await vitgpu(['eval', '--run', run, '--out', join(dir, 'eval-mixed'), '--resamples', '50', '--precision', 'mixed']);
    expect(evalMixed.code, evalMixed.stderr).toBe(0);
    const probs = async (precision: string) => {
      const r = await vitgpu(['predict', '--run', run, '--json', '--precision', precision, join(dir, 'data', 'images', 'img0000.png')]);
      expect(r.code, r.stderr).toBe(0);
      return Object.values(JSON.parse(r.stdout.trim()).probabilities) as number[];
    };
    const [p32, p16] = [await probs('f32'), await probs('mixed')];
    expectClose(p16, p32, { atol: 1e-2, rtol: 0 }, 'probabilities mixed vs f32');
    const fixtures = new URL('../fixtures/vit/', import.meta.url).pathname;
    const embed = (precision: string) => vitgpu(['embed', '--weights', `${fixtures}timm-f32.safetensors`, '--image', `${fixtures}image.png`, '--heads', '2', '--image-size', '32', '--json', '--precision', precision]);
    const [e32, e16] = [JSON.parse((await embed('f32')).stdout).embedding, JSON.parse((await embed('mixed')).stdout).embedding];
    expectClose(e16, e32, { atol: 1e-2, rtol: 1e-2 }, 'embedding mixed vs f32');
    expect(e16).not.toEqual(e32);
    const bad = await embed('bf16');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--precision must be one of f32, mixed, got "bf16"/);
    const noMixed = await vitgpu(['train', '--data', csv, ...common, '--loss-scale', '1024', '--out', join(dir, 'run-bad')]);
    expect(noMixed.code).toBe(1);
    expect(noMixed.stderr).toMatch(/--loss-scale goes with --precision mixed/);
    const badScale = await vitgpu(['train', '--data', csv, ...common, '--precision', 'mixed', '--loss-scale', '-1', '--out', join(dir, 'run-bad')]);
    expect(badScale.stderr).toMatch(/--loss-scale must be a positive number, got "-1"/);
  }, 600_000);
});
