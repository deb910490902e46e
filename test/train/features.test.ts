// Frozen features and linear probes from the command line: `vitgpu features` gives what `vitgpu embed`
// gives for the same image, a --freeze-backbone run leaves the backbone bit-identical to its init, and
// the probe trained from cached features (made by `vitgpu features`, or extracted by the run itself)
// ends with the same head as one that runs the backbone on every batch.

import { copyFileSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { vitgpu } from '../cli-runner.js';
import { writeSyntheticDataset } from '../../train/demo-data-node.js';
import { expectClose, checkpointFile } from '../helpers.js';

let dir: string;
let csv: string;
let base: string;

const common = ['--batch-size', '16', '--lr', '1e-2', '--seed', '3', '--workers', '1', '--patience', '0'];

const fileOf = checkpointFile;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vitgpu-features-'));
  csv = await writeSyntheticDataset(join(dir, 'data'), { images: 120, size: 48, seed: 9 });
  const r = await vitgpu(['train', '--data', csv, '--init', 'random', '--arch', 'vit-tiny-test', '--image-size', '32', ...common, '--epochs', '1', '--out', join(dir, 'base-run')]);
  expect(r.code, r.stderr).toBe(0);
  base = join(dir, 'base.safetensors');
  copyFileSync(join(dir, 'base-run', 'best.safetensors'), base);
}, 300_000);

describe('vitgpu features and train --freeze-backbone', () => {
  it('features match vitgpu embed for the same image, with paths and labels', async () => {
    const out = join(dir, 'feats');
    const r = await vitgpu(['features', '--weights', base, '--data', csv, '--image-size', '32', '--out', out, '--batch-size', '7']);
    expect(r.code, r.stderr).toBe(0);
    const test = await fileOf(join(out, 'test.safetensors'));
    const paths = JSON.parse(test.metadata.paths) as string[];
    expect(test.metadata.label_names).toBe('cardiomegaly,pleural_effusion,nodule,pneumothorax');
    const cls = test.tensors.get('cls')!;
    const mean = test.tensors.get('patch_mean')!;
    expect(cls.length).toBe(paths.length * 32);
    expect(mean.length).toBe(paths.length * 32);
    expect(test.tensors.get('labels')!.length).toBe(paths.length * 4);
    for (const i of [0, paths.length - 1]) {
      const e = await vitgpu(['embed', '--weights', base, '--image', join(dir, 'data', paths[i]), '--image-size', '32', '--json']);
      expect(e.code, e.stderr).toBe(0);
      const embedding = JSON.parse(e.stdout).embedding as number[];
      expectClose(cls.subarray(i * 32, (i + 1) * 32), embedding, { atol: 1e-5, rtol: 1e-5 }, `cls of ${paths[i]}`);
    }
    expect(existsSync(join(out, 'train.safetensors')) && existsSync(join(out, 'valid.safetensors'))).toBe(true);
  }, 300_000);

  it('a probe keeps the backbone bit-identical, and cached features give the same head as running the backbone', async () => {
    const args = ['train', '--data', csv, '--init', base, '--image-size', '32', ...common, '--epochs', '3', '--freeze-backbone'];
    const auto = join(dir, 'probe-auto');
    const off = join(dir, 'probe-off');
    const given = join(dir, 'probe-given');
    const ra = await vitgpu([...args, '--out', auto]);
    expect(ra.code, ra.stderr).toBe(0);
    expect(ra.stderr).toMatch(/trainable parameters: 132 of [\d,]+ \([\d.]+%; the head only\)/);
    expect(ra.stderr).toMatch(/extracting train features/);
    expect(ra.stderr).toMatch(/without augmentation/);
    expect(existsSync(join(auto, 'features', 'train.safetensors'))).toBe(true);
    const ro = await vitgpu([...args, '--features', 'off', '--out', off]);
    expect(ro.code, ro.stderr).toBe(0);
    const rg = await vitgpu([...args, '--features', join(dir, 'feats'), '--out', given]);
    expect(rg.code, rg.stderr).toBe(0);
    expect(rg.stderr).toMatch(/train features: .*feats/);

    const b = (await fileOf(base)).tensors;
    const runs = await Promise.all([auto, off, given].map((d) => fileOf(join(d, 'last', 'checkpoint.safetensors'))));
    for (const run of runs) {
      for (const [name, v] of b) if (!name.startsWith('head.')) expect(Array.from(run.tensors.get(name)!), name).toEqual(Array.from(v));
      expect([...run.tensors.keys()].filter((n) => n.startsWith('optim.m.')).sort()).toEqual(['optim.m.head.bias', 'optim.m.head.weight']);
    }
    // The same head, bit for bit: each embedding is computed row by row, whatever the batch it is in.
    for (const name of ['head.weight', 'head.bias']) {
      expect(Array.from(runs[1].tensors.get(name)!), `${name}: off vs auto`).toEqual(Array.from(runs[0].tensors.get(name)!));
      expect(Array.from(runs[2].tensors.get(name)!), `${name}: given vs auto`).toEqual(Array.from(runs[0].tensors.get(name)!));
      expect(Array.from(runs[0].tensors.get(name)!)).not.toEqual(Array.from(b.get(name) ?? []));
    }
    // The probe is a full model: eval takes it as any run.
    const ev = await vitgpu(['eval', '--run', auto, '--out', join(dir, 'probe-eval'), '--resamples', '50']);
    expect(ev.code, ev.stderr).toBe(0);
    // Features of other weights are refused, not silently used.
    const bad = await vitgpu(['train', '--data', csv, '--init', 'random', '--arch', 'vit-tiny-test', ...common, '--epochs', '1', '--freeze-backbone', '--features', join(dir, 'feats'), '--out', join(dir, 'probe-bad')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--features .*feats: .*train\.safetensors holds features of other weights/);
  }, 600_000);
});
