// `vitgpu train` as users run it: validation AUC rises on synthetic data, a killed run resumes to the
// same result as an uninterrupted one, and bad input fails before training with a clear message.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN, vitgpu } from '../cli-runner.js';
import { writeSyntheticDataset } from '../../train/demo-data-node.js';
import { bytesSource, readHeader, readTensorF32 } from '../../models/safetensors.js';

let dir: string;
let csv: string;


const common = ['--init', 'random', '--arch', 'vit-tiny-test', '--image-size', '32', '--batch-size', '16', '--lr', '2e-3', '--seed', '7', '--workers', '1'];

async function tensorsOf(path: string): Promise<Map<string, Float32Array>> {
  const src = bytesSource(readFileSync(path), path);
  const h = await readHeader(src);
  const out = new Map<string, Float32Array>();
  for (const info of h.tensors.values()) out.set(info.name, await readTensorF32(src, info));
  return out;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vitgpu-train-'));
  csv = await writeSyntheticDataset(join(dir, 'data'), { images: 160, size: 48, seed: 3 });
});

describe('vitgpu train', () => {
  it('validation AUC rises on synthetic data; writes best, last, log and summary', async () => {
    const out = join(dir, 'run-auc');
    // The two most conspicuous findings; a ViT from scratch on 100 images needs a few epochs to start.
    const r = await vitgpu(['train', '--data', csv, ...common, '--labels', 'cardiomegaly,pleural_effusion', '--lr', '1e-3', '--warmup-steps', '20',
      '--epochs', '8', '--patience', '0', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const log = readFileSync(join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(log).toHaveLength(8);
    const aucs = log.map((e) => e.valAuc);
    console.log(`validation mean AUC by epoch: ${aucs.map((a: number) => a.toFixed(3)).join(' ')}`);
    expect(Math.max(...aucs.slice(4))).toBeGreaterThan(aucs[0] + 0.1);
    expect(Math.max(...aucs.slice(4))).toBeGreaterThan(0.65);
    for (const f of ['best.safetensors', 'last/checkpoint.safetensors', 'config.json', 'summary.json']) expect(existsSync(join(out, f)), f).toBe(true);
    expect(r.stdout).toMatch(/best: epoch \d+, valid mean AUC/);
  }, 300_000);

  it('a killed run resumed with --resume ends exactly where an uninterrupted run does (between or inside epochs)', async () => {
    const a = join(dir, 'run-a');
    const b = join(dir, 'run-b');
    const args = ['train', '--data', csv, ...common, '--epochs', '3', '--patience', '0'];
    expect((await vitgpu([...args, '--out', a])).code).toBe(0);

    // Kill B right after its first epoch's checkpoint is written.
    const child = spawn(process.execPath, [BIN, ...args, '--out', b], { stdio: 'ignore' });
    const logB = join(b, 'log.jsonl');
    await new Promise<void>((resolveWait, reject) => {
      const timer = setInterval(() => {
        if (existsSync(logB) && readFileSync(logB, 'utf8').trim().split('\n').length >= 1 && existsSync(join(b, 'last', 'checkpoint.safetensors'))) {
          child.kill('SIGKILL');
          clearInterval(timer);
          resolveWait();
        }
      }, 20);
      child.on('exit', () => {
        clearInterval(timer);
        resolveWait();
      });
      setTimeout(() => reject(new Error('run B did not checkpoint')), 200_000);
    });
    const epochsBefore = readFileSync(logB, 'utf8').trim().split('\n').length;
    expect(epochsBefore).toBeLessThan(3);
    // Starting again without --resume refuses to overwrite.
    const again = await vitgpu([...args, '--out', b]);
    expect(again.stderr).toMatch(/already holds a run .* pass --resume/);
    const resumed = await vitgpu(['train', '--resume', '--out', b]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming .* after epoch/);

    const ta = await tensorsOf(join(a, 'last', 'checkpoint.safetensors'));
    const tb = await tensorsOf(join(b, 'last', 'checkpoint.safetensors'));
    expect([...tb.keys()].sort()).toEqual([...ta.keys()].sort());
    for (const [name, va] of ta) expect(Array.from(tb.get(name)!), name).toEqual(Array.from(va));
    const la = readFileSync(join(a, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const lb = readFileSync(join(b, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lb.map((e) => [e.epoch, e.trainLoss, e.valLoss, e.valAuc])).toEqual(la.map((e) => [e.epoch, e.trainLoss, e.valLoss, e.valAuc]));

    // Killed inside an epoch: with a checkpoint after every optimizer step, it resumes at the next batch.
    const c = join(dir, 'run-c');
    const childC = spawn(process.execPath, [BIN, ...args, '--checkpoint-steps', '1', '--out', c], { stdio: 'ignore' });
    await new Promise<void>((resolveWait, reject) => {
      const timer = setInterval(() => {
        if (existsSync(join(c, 'last', 'checkpoint.safetensors'))) {
          childC.kill('SIGKILL');
          clearInterval(timer);
          resolveWait();
        }
      }, 10);
      childC.on('exit', () => {
        clearInterval(timer);
        resolveWait();
      });
      setTimeout(() => reject(new Error('run C did not checkpoint')), 200_000);
    });
    const resumedC = await vitgpu(['train', '--resume', '--out', c]);
    expect(resumedC.code, resumedC.stderr).toBe(0);
    expect(resumedC.stderr).toMatch(/resuming .* after epoch 0, batch \d+ of epoch 1/);
    const tc = await tensorsOf(join(c, 'last', 'checkpoint.safetensors'));
    for (const [name, va] of ta) expect(Array.from(tc.get(name)!), name).toEqual(Array.from(va));
    const lc = readFileSync(join(c, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lc.map((e) => [e.epoch, e.trainLoss, e.valLoss, e.valAuc])).toEqual(la.map((e) => [e.epoch, e.trainLoss, e.valLoss, e.valAuc]));
  }, 600_000);
});

describe('bad input fails before training, naming the file, row or column', () => {
  const edit = (name: string, f: (lines: string[]) => string[]) => {
    const lines = readFileSync(csv, 'utf8').trim().split('\n');
    const path = join(dir, 'data', name);
    writeFileSync(path, `${f(lines).join('\n')}\n`);
    return path;
  };
  const train = (data: string, extra: string[] = []) => vitgpu(['train', '--data', data, ...common, '--epochs', '1', '--out', join(dir, `bad-${Math.random()}`), ...extra]);

  it('a missing image names the file and the CSV line; --skip-bad-images counts it', async () => {
    const data = edit('missing.csv', (l) => [...l.slice(0, 5), 'images/nope.png,train,1,0,0,0', ...l.slice(5)]);
    const r = await train(data);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/missing\.csv line 6: .*nope\.png: missing image/);
    const skipped = await train(data, ['--skip-bad-images']);
    expect(skipped.code, skipped.stderr).toBe(0);
    expect(skipped.stderr).toMatch(/skipped 1 bad image/);
  }, 120_000);

  it('a corrupt PNG', async () => {
    writeFileSync(join(dir, 'data', 'images', 'corrupt.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]));
    const data = edit('corrupt.csv', (l) => [...l, 'images/corrupt.png,valid,0,0,1,0']);
    const r = await train(data);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/corrupt\.csv line \d+: .*corrupt\.png/);
    unlinkSync(join(dir, 'data', 'images', 'corrupt.png'));
  }, 120_000);

  it('a missing label column, an unknown split, an empty split, a label without positives', async () => {
    let r = await train(csv, ['--labels', 'cardiomegaly,edema']);
    expect(r.stderr).toMatch(/edema/);
    expect(r.stderr).toMatch(/cardiomegaly/); // the columns that do exist are listed
    r = await train(edit('split.csv', (l) => [...l, 'images/img0000.png,training,0,0,0,0']));
    expect(r.stderr).toMatch(/split\.csv line \d+: unknown split "training"/);
    r = await train(edit('nosplit.csv', (l) => l.filter((x, i) => i === 0 || !x.includes(',valid,'))));
    expect(r.stderr).toMatch(/valid/);
    r = await train(edit('nopos.csv', (l) => l.map((x, i) => (i === 0 || !x.includes(',train,') ? x : x.replace(/,[01]$/, ',0')))));
    expect(r.stderr).toMatch(/pneumothorax/);
    expect(r.stderr).toMatch(/no positive/);
  }, 120_000);
});
