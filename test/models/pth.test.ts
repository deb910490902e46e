// PyTorch checkpoints (.pth) read without Python: the fixtures written by scripts/make-pth-fixtures.py
// with torch.save give PyTorch's outputs, in every naming and nesting; legacy and hostile files are
// refused with the global or format named, and nothing in a pickle ever runs; mutated files fail with
// our errors only.

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { vitgpu } from '../cli-runner.js';
import { writeSyntheticDataset } from '../../train/demo-data-node.js';
import { expectClose } from '../helpers.js';
import { VitgpuError } from '../../engine/errors.js';
import { mulberry32 } from '../../engine/prng.js';
import { readCheckpointHeader } from '../../models/checkpoint-file.js';
import { planCheckpoint } from '../../models/checkpoint.js';
import { unpickle, PyDict, PyTuple } from '../../models/pickle.js';
import { bytesSource, readHeader, readTensorF32 } from '../../models/safetensors.js';

const VIT = new URL('../fixtures/vit/', import.meta.url).pathname;
const PTH = new URL('../fixtures/pth/', import.meta.url).pathname;
const expected = JSON.parse(readFileSync(`${VIT}expected.json`, 'utf8')) as { cases: Record<string, { embedding: number[]; logits: number[] | null }> };
const PWNED = '/tmp/vitgpu-pwned';

const CASES: [string, string][] = [
  ['timm-f32.pth', 'timm-f32'],
  ['dinov2-hub-f16.pth', 'dinov2-hub-f16'],
  ['hf-vit-bf16.pth', 'hf-vit-bf16'],
  ['hf-dinov2-f32-model.pth', 'hf-dinov2-f32'],
  ['timm-f32-state_dict.pth', 'timm-f32'],
  ['dinov2-hub-f32-teacher.pth', 'dinov2-hub-f32'],
];

describe('.pth checkpoints', () => {
  it.each(CASES)('%s holds exactly the tensors of %s.safetensors', async (file, twin) => {
    const pth = bytesSource(readFileSync(PTH + file), file);
    const st = bytesSource(readFileSync(`${VIT}${twin}.safetensors`), twin);
    const a = await readCheckpointHeader(pth);
    const b = await readHeader(st);
    expect(a.fileFormat).toBe('pth');
    const strip = (n: string) => n.replace(/^backbone\./, '');
    const names = [...a.tensors.keys()].filter((n) => !n.startsWith('dino_head.')).map(strip).sort();
    expect(names).toEqual([...b.tensors.keys()].sort());
    for (const [name, info] of a.tensors) {
      if (name.startsWith('dino_head.')) continue;
      const other = b.tensors.get(strip(name))!;
      expect(info.shape, name).toEqual(other.shape);
      expect(info.dtype, name).toBe(other.dtype);
      expect(Array.from(await readTensorF32(pth, info)), name).toEqual(Array.from(await readTensorF32(st, other)));
    }
  });

  it.each(CASES)('vitgpu embed on %s matches PyTorch', async (file, twin) => {
    const r = await vitgpu(['embed', '--weights', PTH + file, '--image', `${VIT}image.png`, '--heads', '2', '--image-size', '32', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    const c = expected.cases[`${twin}.safetensors`];
    expectClose(out.embedding, c.embedding, { atol: 2e-5, rtol: 1e-4 }, 'embedding');
    if (c.logits) expectClose(out.logits, c.logits, { atol: 2e-5, rtol: 1e-4 }, 'logits');
  });

  it('inspect shows the nesting and the DINO training heads as unused; convert writes the same tensors as safetensors', async () => {
    const i = await vitgpu(['inspect', `${PTH}dinov2-hub-f32-teacher.pth`]);
    expect(i.code, i.stderr).toBe(0);
    expect(i.stdout).toMatch(/file: PyTorch checkpoint \(zip\), state dict under "teacher"/);
    expect(i.stdout).toMatch(/naming: dinov2-hub \(prefix "backbone\."\)/);
    expect(i.stdout).toMatch(/not used by the model: .*dino_head\.mlp\.0\.weight/);
    const dir = mkdtempSync(join(tmpdir(), 'vitgpu-convert-'));
    const out = join(dir, 'hf-vit.safetensors');
    const c = await vitgpu(['convert', `${PTH}hf-vit-bf16.pth`, out]);
    expect(c.code, c.stderr).toBe(0);
    const converted = bytesSource(readFileSync(out), out);
    const twin = bytesSource(readFileSync(`${VIT}hf-vit-bf16.safetensors`), 'twin');
    const h = await readHeader(converted);
    const t = await readHeader(twin);
    expect([...h.tensors.keys()].sort()).toEqual([...t.tensors.keys()].sort());
    for (const [name, info] of h.tensors) {
      expect(info.dtype).toBe('BF16');
      expect(Array.from(await readTensorF32(converted, info))).toEqual(Array.from(await readTensorF32(twin, t.tensors.get(name)!)));
    }
    // train and inspect take the converted file as they take the original
    expect((await vitgpu(['inspect', out])).stdout).toMatch(/naming: hf-vit/);
  });

  it('train --init takes a .pth checkpoint', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vitgpu-pth-train-'));
    const csv = await writeSyntheticDataset(join(dir, 'data'), { images: 40, size: 32, seed: 4 });
    const r = await vitgpu(['train', '--data', csv, '--init', `${PTH}dinov2-hub-f32-teacher.pth`, '--heads', '2', '--image-size', '32', '--epochs', '1',
      '--batch-size', '16', '--workers', '1', '--out', join(dir, 'run')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/initialization: .*dinov2-hub-f32-teacher\.pth \(dinov2-hub naming/);
    expect(existsSync(join(dir, 'run', 'best.safetensors'))).toBe(true);
  }, 120_000);

  it('refuses the legacy format, and pickles that would call os.system or builtins.eval, running nothing', async () => {
    rmSync(PWNED, { force: true });
    const legacy = await vitgpu(['inspect', `${PTH}legacy.pth`]);
    expect(legacy.code).not.toBe(0);
    expect(legacy.stderr).toMatch(/legacy.pth: a PyTorch checkpoint in the legacy \(before 1\.6\) format, which vitgpu does not read; re-save it/);
    // Protocol 2 names Python 3's builtins module __builtin__, and os.system posix.system.
    for (const [file, global] of [['evil-system.pth', 'posix\\.system'], ['evil-eval.pth', '__builtin__\\.eval']]) {
      for (const args of [['inspect', PTH + file], ['embed', '--weights', PTH + file, '--image', `${VIT}image.png`], ['convert', PTH + file, join(tmpdir(), 'x.safetensors')]]) {
        const r = await vitgpu(args);
        expect(r.code, `${args[0]} ${file}`).not.toBe(0);
        expect(r.stderr).toMatch(new RegExp(`refusing the Python global ${global}: .*nothing in a pickle is ever executed`));
      }
    }
    expect(existsSync(PWNED)).toBe(false);
  });

  it('the unpickler builds plain data and refuses every global it was not given', () => {
    const b = (...xs: (number | string)[]) => Uint8Array.from(xs.flatMap((x) => (typeof x === 'string' ? [...x].map((c) => c.charCodeAt(0)) : [x])));
    // {'a': [1, (2, 'x')]} in protocol 2
    const data = b(0x80, 2, '}', 'q', 0, 'X', 1, 0, 0, 0, 'a', ']', 'q', 1, '(', 'K', 1, 'K', 2, 'X', 1, 0, 0, 0, 'x', 0x86, 'e', 's', '.');
    const v = unpickle(data, { globals: {}, source: 't' }) as PyDict;
    const list = v.map.get('a') as unknown[];
    expect(list[0]).toBe(1);
    expect((list[1] as PyTuple).items).toEqual([2, 'x']);
    // GLOBAL 'os system' then REDUCE: refused at the GLOBAL, before any call could happen
    const evil = b(0x80, 2, 'c', 'os\nsystem\n', 'X', 2, 0, 0, 0, 'ls', 0x85, 'R', '.');
    expect(() => unpickle(evil, { globals: {}, source: 't' })).toThrow(/refusing the Python global os\.system/);
    // an allowed marker may not be called
    const call = b(0x80, 2, 'c', 'torch\nFloatStorage\n', ')', 'R', '.');
    expect(() => unpickle(call, { globals: {}, markers: ['torch.FloatStorage'], source: 't' })).toThrow(/refusing to call torch\.FloatStorage/);
    // INST / OBJ and extension opcodes are not allowed at all
    expect(() => unpickle(b('(', 'i', 'os\nsystem\n', '.'), { globals: {}, source: 't' })).toThrow(/opcode 0x69 .* is not allowed/);
    // truncation and bad lengths are errors, not allocations
    expect(() => unpickle(b(0x80, 2, 'X', 0xff, 0xff, 0xff, 0x7f), { globals: {}, source: 't' })).toThrow(/runs past the end of the pickle/);
    expect(() => unpickle(b(0x80, 2, 'N'), { globals: {}, source: 't' })).toThrow(/ends without STOP/);
  });

  it('mutated .pth files fail with vitgpu errors only (3,000 seeded mutations)', async () => {
    const base = readFileSync(`${PTH}timm-f32.pth`);
    const rand = mulberry32(2026);
    let loaded = 0;
    let refused = 0;
    for (let i = 0; i < 3000; i++) {
      const bytes = Uint8Array.from(base);
      const kind = i % 4;
      if (kind === 0) {
        for (let k = 0; k < 1 + Math.floor(rand() * 8); k++) bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256);
      } else if (kind === 1) {
        // inside data.pkl and the zip directories, where the structure is
        const at = rand() < 0.5 ? Math.floor(rand() * 2048) : bytes.length - 1 - Math.floor(rand() * 4096);
        bytes[Math.max(0, at)] ^= 1 << Math.floor(rand() * 8);
      } else if (kind === 2) {
        bytes.fill(0xff, Math.floor(rand() * bytes.length), Math.floor(rand() * bytes.length));
      }
      const cut = kind === 3 ? bytes.subarray(0, Math.floor(rand() * bytes.length)) : bytes;
      const src = bytesSource(cut, `mutant-${i}`);
      try {
        const h = await readCheckpointHeader(src);
        for (const info of h.tensors.values()) await readTensorF32(src, info);
        planCheckpoint(new Map([...h.tensors.values()].map((t) => [t.name, t.shape] as const)), h.metadata);
        loaded++;
      } catch (err) {
        if (!(err instanceof VitgpuError)) throw new Error(`mutant ${i} (kind ${kind}) threw a non-vitgpu error: ${(err as Error).stack}`);
        refused++;
      }
    }
    expect(loaded + refused).toBe(3000);
    expect(refused).toBeGreaterThan(500);
  }, 120_000);
});
