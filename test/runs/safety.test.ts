// Runs that cannot be corrupted: one writer per run directory, divergence stopped before it reaches a
// checkpoint, resume that keeps a run's settings and data, runs that find moved data, cleanup of
// interrupted writes, and one-line errors for file-system failures.

import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN, vitgpu } from '../cli-runner.js';
import { writeSyntheticDataset } from '../../train/demo-data-node.js';
import { bytesSource, readHeader, readTensorF32 } from '../../models/safetensors.js';
import { encodeSafetensors } from '../../models/safetensors-write.js';

let dir: string;
let csv: string;
const common = ['--init', 'random', '--arch', 'vit-tiny-test', '--image-size', '32', '--batch-size', '16', '--lr', '1e-3', '--seed', '3', '--workers', '1'];

async function tensorsOf(path: string): Promise<{ tensors: Map<string, { shape: number[]; data: Float32Array }>; metadata: Record<string, string> }> {
  const src = bytesSource(readFileSync(path), path);
  const h = await readHeader(src);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const info of h.tensors.values()) tensors.set(info.name, { shape: [...info.shape], data: await readTensorF32(src, info) });
  return { tensors, metadata: h.metadata };
}

const lastLine = (text: string) => text.trim().split('\n').pop();
const allFinite = (m: Map<string, { data: Float32Array }>) => [...m.values()].every((t) => t.data.every(Number.isFinite));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vitgpu-safety-'));
  csv = await writeSyntheticDataset(join(dir, 'data'), { images: 64, size: 32, seed: 11 });
  // A finished two-epoch run that several tests copy, resume or evaluate.
  const r = await vitgpu(['train', '--data', csv, ...common, '--epochs', '2', '--patience', '0', '--out', join(dir, 'resumable')]);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toMatch(/: 2 epoch\(s\)\n/); // a finished run is not "stopped early"
}, 180_000);

describe('one writer per run', () => {
  it('a second train on the same --out is refused while the first runs, and both --resume and train take the lock', async () => {
    const out = join(dir, 'locked');
    // Long enough to still be running under any load; it is killed below.
    const first = spawn(process.execPath, [BIN, 'train', '--data', csv, ...common, '--epochs', '200', '--patience', '0', '--out', out], { stdio: 'ignore' });
    const firstDone = new Promise<number | string>((res) => first.on('exit', (code, signal) => res(code ?? signal ?? -1)));
    for (let i = 0; i < 2400 && !existsSync(join(out, '.lock')); i++) await new Promise((r) => setTimeout(r, 25));
    expect(existsSync(join(out, '.lock'))).toBe(true);
    const second = await vitgpu(['train', '--data', csv, ...common, '--epochs', '1', '--out', out]);
    expect(second.code).not.toBe(0);
    expect(second.stderr).toMatch(new RegExp(`is in use by process ${first.pid} on ${hostname()}`));
    const resume = await vitgpu(['train', '--resume', '--out', out]);
    expect(resume.code).not.toBe(0);
    expect(resume.stderr).toMatch(/is in use by process/);
    // Wait for a checkpoint, then kill the holder: its lock stays behind, stale, and --resume takes it over.
    for (let i = 0; i < 2400 && !existsSync(join(out, 'last', 'checkpoint.safetensors')); i++) await new Promise((r) => setTimeout(r, 25));
    first.kill('SIGKILL');
    expect(await firstDone).toBe('SIGKILL');
    expect(existsSync(join(out, '.lock'))).toBe(true);
    const taken = await vitgpu(['train', '--resume', '--out', out, '--epochs', '1']);
    expect(taken.code, taken.stderr).toBe(0);
    expect(taken.stderr).toMatch(new RegExp(`taking over a stale lock \\(process ${first.pid} is gone\\)`));
    expect(existsSync(join(out, '.lock'))).toBe(false);
    // The run is one writer's: its log holds consecutive epochs from 1.
    const epochs = readFileSync(join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).epoch);
    expect(epochs).toEqual(epochs.map((_, i) => i + 1));
  }, 300_000);

  it('a stale lock (its process is gone) is taken over', async () => {
    const out = join(dir, 'stale');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, '.lock'), `${JSON.stringify({ pid: 2 ** 22 + 17, host: hostname(), command: 'train', since: '2026-01-01T00:00:00Z' })}\n`);
    const r = await vitgpu(['train', '--data', csv, ...common, '--epochs', '1', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/taking over a stale lock \(process \d+ is gone\)/);
  }, 120_000);
});

describe('divergence', () => {
  it('stops at the step where the loss or gradients stop being finite, and never checkpoints them', async () => {
    const out = join(dir, 'diverge');
    // An absurd learning rate: the first steps blow the weights up; checkpoints every step.
    const r = await vitgpu(['train', '--data', csv, ...common, '--lr', '1e9', '--epochs', '4', '--checkpoint-steps', '1', '--out', out]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/training diverged at epoch \d+, optimizer step \d+ \(batch \d+ of \d+\): the (loss|gradient norm) is (NaN|-?Infinity)/);
    expect(r.stderr).toMatch(/--lr 1000000000/);
    expect(r.stderr).not.toMatch(/rocAuc|\n\s+at /);
    if (existsSync(join(out, 'last', 'checkpoint.safetensors'))) {
      expect(r.stderr).toMatch(/The last checkpoint .* is intact and resumable/);
      expect(allFinite((await tensorsOf(join(out, 'last', 'checkpoint.safetensors'))).tensors)).toBe(true);
    }
    if (existsSync(join(out, 'best.safetensors'))) expect(allFinite((await tensorsOf(join(out, 'best.safetensors'))).tensors)).toBe(true);
  }, 120_000);

  it('predict, eval and embed refuse a checkpoint with non-finite weights', async () => {
    const good = join(dir, 'finite');
    expect((await vitgpu(['train', '--data', csv, ...common, '--epochs', '1', '--out', good])).code).toBe(0);
    const bad = join(dir, 'nonfinite');
    cpSync(good, bad, { recursive: true });
    const { tensors, metadata } = await tensorsOf(join(good, 'best.safetensors'));
    const list = [...tensors.entries()].map(([name, t]) => ({ name, dtype: 'F32' as const, shape: t.shape, data: t.data }));
    list.find((t) => t.name === 'blocks.1.mlp.fc1.weight')!.data[5] = NaN;
    writeFileSync(join(bad, 'best.safetensors'), Buffer.concat(encodeSafetensors(list, metadata)));
    const img = join(dir, 'data', 'images', 'img0001.png');
    for (const args of [['predict', '--run', bad, img], ['eval', '--run', bad, '--out', join(dir, 'nf-eval')], ['embed', '--weights', join(bad, 'best.safetensors'), '--image', img]]) {
      const r = await vitgpu(args);
      expect(r.code, args[0]).not.toBe(0);
      expect(r.stderr, args[0]).toMatch(/blocks\.1\.mlp\.fc1\.weight holds 1 non-finite value\(s\) \(NaN at index 5\)/);
      expect(r.stdout, args[0]).not.toMatch(/NaN/);
    }
  }, 180_000);
});

describe('resume', () => {
  const run = () => join(dir, 'resumable');

  it('refuses options that contradict the run, naming each', async () => {
    const r = await vitgpu(['train', '--resume', '--out', run(), '--lr', '0.5', '--batch-size', '8', '--arch', 'vit-micro']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--lr 0\.5 \(the run has 0\.001\)/);
    expect(r.stderr).toMatch(/--batch-size 8 \(the run has 16\)/);
    expect(r.stderr).toMatch(/--arch vit-micro \(the run has vit-tiny-test\)/);
    // The same value again is no contradiction.
    const same = await vitgpu(['train', '--resume', '--out', run(), '--lr', '1e-3']);
    expect(same.code, same.stderr).toBe(0);
    expect(same.stderr).toMatch(/nothing to do, it has trained all 2 epochs/);
    expect(same.stdout).not.toMatch(/stopped early/);
  }, 120_000);

  it('allows the safe ones and says what changed', async () => {
    const longer = join(dir, 'longer');
    cpSync(run(), longer, { recursive: true });
    const r = await vitgpu(['train', '--resume', '--out', longer, '--epochs', '3', '--workers', '2']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/changed on resume: --epochs 2 -> 3, --workers 1 -> 2/);
    expect(readFileSync(join(longer, 'log.jsonl'), 'utf8').trim().split('\n')).toHaveLength(3);
    expect(JSON.parse(readFileSync(join(longer, 'config.json'), 'utf8')).train.epochs).toBe(3);
  }, 120_000);

  it('refuses a training split that changed since the run started, unless --force', async () => {
    const moved = join(dir, 'changed-split');
    cpSync(join(dir, 'data'), moved, { recursive: true });
    const lines = readFileSync(join(moved, 'master_list.csv'), 'utf8').trim().split('\n');
    const i = lines.findIndex((l, k) => k > 0 && l.includes(',train,'));
    lines[i] = lines[i].replace(/,train,(\d)/, (_, d) => `,train,${d === '1' ? '0' : '1'}`); // one training label flipped
    writeFileSync(join(moved, 'master_list.csv'), `${lines.join('\n')}\n`);
    const copy = join(dir, 'resume-split');
    cpSync(run(), copy, { recursive: true });
    const r = await vitgpu(['train', '--resume', '--out', copy, '--data', join(moved, 'master_list.csv'), '--epochs', '3']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/the training split of .*master_list\.csv changed since the run started .* Pass --force/);
    const forced = await vitgpu(['train', '--resume', '--out', copy, '--data', join(moved, 'master_list.csv'), '--epochs', '3', '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stderr).toMatch(/continuing on the new split \(--force\)/);
  }, 180_000);

  it('removes temporary files that interrupted writes left when the run opens', async () => {
    const copy = join(dir, 'with-temps');
    cpSync(run(), copy, { recursive: true });
    const junk = join(copy, 'last', 'checkpoint.safetensors.tmp-4242-0123456789ab');
    writeFileSync(junk, Buffer.alloc(300_000));
    const r = await vitgpu(['train', '--resume', '--out', copy]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/removed 1 temporary file\(s\) \(0\.3 MiB\) left by an interrupted write: last\/checkpoint\.safetensors\.tmp-4242-0123456789ab/);
    expect(existsSync(junk)).toBe(false);
  }, 120_000);
});

describe('paths', () => {
  it('a run stores absolute paths: eval works from another folder; a moved dataset is found again with --data, or relative to a moved run', async () => {
    const base = join(dir, 'paths');
    cpSync(join(dir, 'data'), join(base, 'data'), { recursive: true });
    // Started from `base` with relative paths.
    const r = await vitgpu(['train', '--data', 'data/master_list.csv', ...common, '--epochs', '1', '--out', 'run'], { cwd: base });
    expect(r.code, r.stderr).toBe(0);
    const config = JSON.parse(readFileSync(join(base, 'run', 'config.json'), 'utf8'));
    expect(config.data.data).toBe(join(base, 'data', 'master_list.csv'));
    expect(config.data.relative).toEqual({ data: '../data/master_list.csv', imageRoot: '../data' });
    const elsewhere = await vitgpu(['eval', '--run', join(base, 'run'), '--out', join(dir, 'paths-eval'), '--resamples', '5'], { cwd: tmpdir() });
    expect(elsewhere.code, elsewhere.stderr).toBe(0);

    // The dataset moves: eval says how to point at it, and --data does.
    renameSync(join(base, 'data'), join(base, 'data-moved'));
    const lost = await vitgpu(['eval', '--run', join(base, 'run'), '--out', join(dir, 'paths-eval2'), '--resamples', '5']);
    expect(lost.code).not.toBe(0);
    expect(lost.stderr).toMatch(/master list .*master_list\.csv is not there any more .* pass --data CSV \(and --image-root DIR\)/);
    const found = await vitgpu(['eval', '--run', join(base, 'run'), '--data', join(base, 'data-moved', 'master_list.csv'), '--out', join(dir, 'paths-eval3'), '--resamples', '5']);
    expect(found.code, found.stderr).toBe(0);

    // Run and data moved together: found relative to the run.
    const together = join(dir, 'together');
    mkdirSync(together);
    renameSync(join(base, 'data-moved'), join(together, 'data'));
    renameSync(join(base, 'run'), join(together, 'run'));
    const rel = await vitgpu(['eval', '--run', join(together, 'run'), '--out', join(dir, 'paths-eval4'), '--resamples', '5']);
    expect(rel.code, rel.stderr).toBe(0);
    const resumed = await vitgpu(['train', '--resume', '--out', join(together, 'run'), '--epochs', '2']);
    expect(resumed.code, resumed.stderr).toBe(0);
  }, 300_000);
});

describe('inputs refused before any work', () => {
  it('an image size that is not a multiple of the patch size, before the pre-flight and before a run folder exists', async () => {
    const out = join(dir, 'bad-size');
    const r = await vitgpu(['train', '--data', csv, ...common, '--image-size', '30', '--out', out]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--image-size 30 with --arch vit-tiny-test: image size 30 is not a multiple of the patch size 8 .*use 24 or 32/);
    expect(r.stderr).not.toMatch(/images, \d+ labels/); // the master list was not even read
    expect(existsSync(out)).toBe(false);
  }, 60_000);

  it('compare checks --baseline against the runs\' names before predicting anything', async () => {
    cpSync(join(dir, 'resumable'), join(dir, 'other'), { recursive: true });
    const t0 = Date.now();
    const r = await vitgpu(['compare', join(dir, 'resumable'), join(dir, 'other'), '--baseline', 'zz', '--out', join(dir, 'cmp-zz')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--baseline zz is not one of the runs' names \(resumable, other\)/);
    expect(r.stderr).not.toMatch(/predicting/);
    expect(Date.now() - t0).toBeLessThan(20_000);
  }, 60_000);

  it('eval --split test checks only the test split\'s images', async () => {
    const data = join(dir, 'bad-train-image');
    cpSync(join(dir, 'data'), data, { recursive: true });
    const lines = readFileSync(join(data, 'master_list.csv'), 'utf8').trim().split('\n');
    const trainLine = lines.findIndex((l, k) => k > 0 && l.includes(',train,'));
    writeFileSync(join(data, lines[trainLine].split(',')[0]), 'not a png');
    const r = await vitgpu(['eval', '--run', join(dir, 'resumable'), '--data', join(data, 'master_list.csv'), '--out', join(dir, 'eval-test-only'), '--resamples', '5']);
    expect(r.code, r.stderr).toBe(0);
    const t = await vitgpu(['eval', '--run', join(dir, 'resumable'), '--data', join(data, 'master_list.csv'), '--split', 'train', '--out', join(dir, 'eval-train'), '--resamples', '5']);
    expect(t.code).not.toBe(0);
    expect(t.stderr).toMatch(new RegExp(`line ${trainLine + 1}`));
  }, 120_000);

  it('--skip-bad-images warns when it skips more than 5% of the listed images', async () => {
    const data = join(dir, 'many-bad');
    cpSync(join(dir, 'data'), data, { recursive: true });
    const lines = readFileSync(join(data, 'master_list.csv'), 'utf8').trim().split('\n').slice(1);
    lines.slice(0, 8).forEach((l) => writeFileSync(join(data, l.split(',')[0]), 'broken'));
    const r = await vitgpu(['train', '--data', join(data, 'master_list.csv'), ...common, '--epochs', '1', '--skip-bad-images', '--out', join(dir, 'many-bad-run')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: 8 of 64 listed images \(12\.5%\) were skipped as bad; only 56 remain/);
  }, 120_000);

  it('says once, at the start, which labels the validation split cannot score', async () => {
    const data = join(dir, 'one-class-valid');
    cpSync(join(dir, 'data'), data, { recursive: true });
    const lines = readFileSync(join(data, 'master_list.csv'), 'utf8').trim().split('\n');
    const fixed = lines.map((l, k) => (k > 0 && l.includes(',valid,') ? l.replace(/,valid,(\d)/, ',valid,0') : l));
    writeFileSync(join(data, 'master_list.csv'), `${fixed.join('\n')}\n`);
    const r = await vitgpu(['train', '--data', join(data, 'master_list.csv'), ...common, '--epochs', '2', '--out', join(dir, 'one-class-run')]);
    expect(r.code, r.stderr).toBe(0);
    const notes = r.stderr.match(/note: the validation split has one class only for cardiomegaly \(no positives\)/g) ?? [];
    expect(notes).toHaveLength(1);
  }, 120_000);

  it('predict refuses a non-regular file and an image above the pixel limit without decoding it', async () => {
    const r = await vitgpu(['predict', '--run', join(dir, 'resumable'), '/dev/zero'], { timeoutMs: 30_000 });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/\/dev\/zero: not a regular file/);
    // A PNG header claiming 12000 x 12000 pixels (and nothing behind it).
    const big = join(dir, 'huge.png');
    const head = Buffer.alloc(33);
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]).copy(head);
    head.write('IHDR', 12, 'latin1');
    head.writeUInt32BE(12000, 16);
    head.writeUInt32BE(12000, 20);
    head[24] = 8;
    writeFileSync(big, head);
    const p = await vitgpu(['predict', '--run', join(dir, 'resumable'), big]);
    expect(p.code).not.toBe(0);
    expect(p.stderr).toMatch(/huge\.png: 12000 × 12000 pixels is above the limit of 50000000 \(--max-pixels N to allow larger images\)/);
  }, 60_000);
});

describe('file-system failures are one line naming the path', () => {
  it('--out that is a file, inspect on a folder, malformed config metadata', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    const r = await vitgpu(['train', '--data', csv, ...common, '--out', file]);
    expect(lastLine(r.stderr)).toBe(`vitgpu: ${file}: exists and is not a directory; choose another --out`);
    const i = await vitgpu(['inspect', dir]);
    expect(lastLine(i.stderr)).toBe(`vitgpu: ${dir}: is a directory, not a file; name a file inside it`);
    expect(i.stderr).not.toMatch(/\n\s+at /);
    const { tensors, metadata } = await tensorsOf(join(dir, 'resumable', 'best.safetensors'));
    const list = [...tensors.entries()].map(([name, t]) => ({ name, dtype: 'F32' as const, shape: t.shape, data: t.data }));
    const broken = join(dir, 'broken-config.safetensors');
    writeFileSync(broken, Buffer.concat(encodeSafetensors(list, { ...metadata, config: '{"width": 32,' })));
    // inspect lists what the file holds and says why it cannot be loaded; embed refuses it in one line.
    const m = await vitgpu(['inspect', broken]);
    expect(m.stdout).toMatch(/not a ViT checkpoint vitgpu can load: .*broken-config\.safetensors: __metadata__\.config is not valid JSON/);
    const e = await vitgpu(['embed', '--weights', broken, '--image', join(dir, 'data', 'images', 'img0001.png')]);
    expect(e.code).not.toBe(0);
    expect(lastLine(e.stderr)).toMatch(/^vitgpu: .*broken-config\.safetensors: __metadata__\.config is not valid JSON .*the file is damaged/);
    expect(e.stderr).not.toMatch(/\n\s+at /);
  }, 60_000);

  const canMount = (() => {
    if (process.getuid?.() !== 0) return false;
    try {
      const probe = mkdtempSync(join(tmpdir(), 'vitgpu-mount-probe-'));
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe], { stdio: 'ignore' });
      execFileSync('umount', [probe], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

  // Needs root and mount (true on the CI and development machines); says so when skipped.
  it.runIf(canMount)('a read-only --out and a full disk: one line, and the earlier checkpoint untouched', async () => {
    const ro = mkdtempSync(join(tmpdir(), 'vitgpu-ro-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', ro]);
    try {
      const r = await vitgpu(['train', '--data', csv, ...common, '--out', join(ro, 'run')]);
      expect(r.code).not.toBe(0);
      expect(lastLine(r.stderr)).toBe(`vitgpu: ${join(ro, 'run')}: cannot create the run directory: read-only file system (EROFS); choose another --out`);
    } finally {
      execFileSync('umount', [ro]);
    }
    // A disk with room for the first epoch's checkpoints but not for the second's temporary copy.
    const full = mkdtempSync(join(tmpdir(), 'vitgpu-full-'));
    const bestSize = statSync(join(dir, 'resumable', 'best.safetensors')).size;
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${Math.ceil((bestSize * 5.5) / 4096) * 4096}`, 'tmpfs', full]);
    try {
      const out = join(full, 'run');
      const r = await vitgpu(['train', '--data', csv, ...common, '--epochs', '3', '--patience', '0', '--out', out]);
      expect(r.code).not.toBe(0);
      const lines = r.stderr.trim().split('\n');
      expect(lines[lines.length - 1]).toMatch(new RegExp(`^vitgpu: ${full}/run/[^ ]+: cannot write it: no space left on device \\(ENOSPC\\); free some space`));
      expect(r.stderr).not.toMatch(/\n\s+at /);
      const last = await tensorsOf(join(out, 'last', 'checkpoint.safetensors'));
      expect(JSON.parse(last.metadata.train_state).epoch).toBeGreaterThanOrEqual(1);
      expect(allFinite(last.tensors)).toBe(true);
    } finally {
      execFileSync('umount', [full]);
    }
  }, 180_000);
  if (!canMount) console.warn('safety.test: the read-only and full-disk checks are skipped: they need root and mount');
});
