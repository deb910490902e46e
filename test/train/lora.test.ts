// LoRA runs from the command line: adapter-only checkpoints in PEFT names naming a verified base, the
// trainable-parameter count, eval/predict on them, merge-lora, a frozen backbone left bit-identical,
// and a killed LoRA run (with dropout) resumed bit-identically, with --checkpoint-activations switched
// on at the resume.

import { spawn } from 'node:child_process';
import { appendFileSync, copyFileSync, existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN, vitgpu } from '../cli-runner.js';
import { checkpointFile } from '../helpers.js';
import { writeSyntheticDataset } from '../../train/demo-data-node.js';

let dir: string;
let csv: string;
let base: string;

const common = ['--batch-size', '16', '--lr', '2e-3', '--seed', '7', '--workers', '1', '--patience', '0'];

const fileOf = checkpointFile;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vitgpu-lora-'));
  csv = await writeSyntheticDataset(join(dir, 'data'), { images: 120, size: 48, seed: 5 });
  // A base checkpoint: one epoch of full fine-tuning from a random tiny ViT.
  const r = await vitgpu(['train', '--data', csv, '--init', 'random', '--arch', 'vit-tiny-test', '--image-size', '32', ...common, '--epochs', '1', '--out', join(dir, 'base-run')]);
  expect(r.code, r.stderr).toBe(0);
  base = join(dir, 'base.safetensors');
  copyFileSync(join(dir, 'base-run', 'best.safetensors'), base);
}, 300_000);

describe('train --lora-rank', () => {
  it('writes adapter-only checkpoints in PEFT names, reports the trainable count; eval, predict and merge-lora use them', async () => {
    const out = join(dir, 'lora-qv');
    const r = await vitgpu(['train', '--data', csv, '--init', base, '--image-size', '32', ...common, '--epochs', '2', '--lora-rank', '4', '--lora-targets', 'qv', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    // depth 2 × (q and v: A [4, 32] + B [32, 4]) = 1,024 adapter values; head 4 × 32 + 4 = 132.
    expect(r.stderr).toMatch(/trainable parameters: 1,156 of [\d,]+ \([\d.]+%; LoRA rank 4 on qv \(1,024 adapter values\) and the head\)/);
    const best = await fileOf(join(out, 'best.safetensors'));
    expect([...best.tensors.keys()].sort()).toEqual([
      'base_model.model.blocks.0.attn.qkv.q.lora_A.weight', 'base_model.model.blocks.0.attn.qkv.q.lora_B.weight',
      'base_model.model.blocks.0.attn.qkv.v.lora_A.weight', 'base_model.model.blocks.0.attn.qkv.v.lora_B.weight',
      'base_model.model.blocks.1.attn.qkv.q.lora_A.weight', 'base_model.model.blocks.1.attn.qkv.q.lora_B.weight',
      'base_model.model.blocks.1.attn.qkv.v.lora_A.weight', 'base_model.model.blocks.1.attn.qkv.v.lora_B.weight',
      'base_model.model.head.bias', 'base_model.model.head.weight',
    ]);
    expect(best.metadata.format).toBe('vitgpu-lora');
    const lora = JSON.parse(best.metadata.lora);
    expect(lora).toMatchObject({ rank: 4, alpha: 16, dropout: 0.05, targets: 'qv', base: { file: base, bytes: statSync(base).size } });
    expect(lora.base.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(join(out, 'best.safetensors')).size).toBeLessThan(statSync(base).size / 4);
    const last = await fileOf(join(out, 'last', 'checkpoint.safetensors'));
    expect(last.tensors.has('optim.m.base_model.model.blocks.0.attn.qkv.q.lora_B.weight')).toBe(true);
    expect([...last.tensors.keys()].filter((n) => n.startsWith('optim.m.'))).toHaveLength(10); // moments only for what trains
    expect(Array.from(best.tensors.get('base_model.model.blocks.0.attn.qkv.q.lora_B.weight')!).some((v) => v !== 0)).toBe(true);

    const ev = await vitgpu(['eval', '--run', out, '--out', join(dir, 'lora-eval'), '--resamples', '50']);
    expect(ev.code, ev.stderr).toBe(0);
    const pr = await vitgpu(['predict', '--run', out, join(dir, 'data', 'images', 'img0000.png')]);
    expect(pr.code, pr.stderr).toBe(0);
    // The browser page reads full checkpoints only: serve says how to make one.
    const served = await vitgpu(['serve', '--run', out, '--port', '0'], { timeoutMs: 120_000 });
    expect(served.code).toBe(1);
    expect(served.stderr).toMatch(/is a LoRA run: .*npx vitgpu merge-lora/);

    // merge-lora: q and v rows of qkv change, the k rows and every other backbone weight stay bit-identical.
    const merged = join(dir, 'merged.safetensors');
    const m = await vitgpu(['merge-lora', out, '--out', merged]);
    expect(m.code, m.stderr).toBe(0);
    const mf = await fileOf(merged);
    const bf = await fileOf(base);
    for (const [name, v] of bf.tensors) {
      if (name.startsWith('head.')) continue;
      const got = mf.tensors.get(name)!;
      if (name.endsWith('attn.qkv.weight')) {
        const k = (a: Float32Array) => Array.from(a.subarray(32 * 32, 64 * 32));
        expect(k(got), `${name} k rows`).toEqual(k(v));
        expect(Array.from(got.subarray(0, 32 * 32)), `${name} q rows`).not.toEqual(Array.from(v.subarray(0, 32 * 32)));
      } else {
        expect(Array.from(got), name).toEqual(Array.from(v));
      }
    }
    expect(Array.from(mf.tensors.get('head.weight')!)).toEqual(Array.from(best.tensors.get('base_model.model.head.weight')!));
    // The merged file is an ordinary checkpoint (that merging equals the adapters: test/models/lora.test.ts).
    const img = join(dir, 'data', 'images', 'img0001.png');
    const viaMerged = await vitgpu(['embed', '--weights', merged, '--image', img, '--json']);
    expect(viaMerged.code, viaMerged.stderr).toBe(0);

    // A changed base is refused, naming it.
    copyFileSync(base, `${base}.bak`);
    appendFileSync(base, Buffer.from([0]));
    try {
      const bad = await vitgpu(['predict', '--run', out, img]);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/base checkpoint .*base\.safetensors changed since the adapters were trained/);
    } finally {
      copyFileSync(`${base}.bak`, base);
    }
  }, 600_000);

  it('a killed LoRA run with dropout resumes bit-identically (adding --checkpoint-activations on resume)', async () => {
    const args = ['train', '--data', csv, '--init', base, '--image-size', '32', ...common, '--epochs', '2', '--lora-rank', '2', '--lora-targets', 'all-linear', '--lora-dropout', '0.2'];
    const a = join(dir, 'lora-a');
    const c = join(dir, 'lora-c');
    const ra = await vitgpu([...args, '--out', a]);
    expect(ra.code, ra.stderr).toBe(0);
    const child = spawn(process.execPath, [BIN, ...args, '--checkpoint-steps', '1', '--out', c], { stdio: 'ignore' });
    // Resolved when the process is gone (a kill is only delivered, not finished, when kill() returns).
    await new Promise<void>((resolveWait, reject) => {
      const timer = setInterval(() => {
        if (existsSync(join(c, 'last', 'checkpoint.safetensors'))) {
          child.kill('SIGKILL');
          clearInterval(timer);
        }
      }, 10);
      child.on('exit', () => {
        clearInterval(timer);
        resolveWait();
      });
      setTimeout(() => reject(new Error('the LoRA run did not checkpoint')), 200_000);
    });
    const refused = await vitgpu(['train', '--resume', '--out', c, '--lora-rank', '8']);
    expect(refused.stderr).toMatch(/--lora-rank 8 \(the run has 2\)/);
    const resumed = await vitgpu(['train', '--resume', '--out', c, '--checkpoint-activations']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming .* after epoch 0, batch \d+ of epoch 1/);
    expect(resumed.stderr).toMatch(/changed on resume: --checkpoint-activations/);
    const ta = (await fileOf(join(a, 'last', 'checkpoint.safetensors'))).tensors;
    const tc = (await fileOf(join(c, 'last', 'checkpoint.safetensors'))).tensors;
    expect([...tc.keys()].sort()).toEqual([...ta.keys()].sort());
    for (const [name, va] of ta) expect(Array.from(tc.get(name)!), name).toEqual(Array.from(va));
    const log = (d: string) => readFileSync(join(d, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).map((e) => [e.epoch, e.trainLoss, e.valLoss, e.valAuc]);
    expect(log(c)).toEqual(log(a));
  }, 600_000);
});
