// The safetensors reader and writer: conversions against known bit patterns and a brute-force
// nearest-value reference, round trips through memory and through files, a file laid out byte by byte
// as Python's `safetensors` writes it, every damaged-file case, and a seeded fuzz test. No GPU needed.

import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mulberry32 } from '../../engine/prng.js';
import { blobSource, bytesSource, jsonErrorPosition, readHeader, readTensorF32, SafetensorsError, type ByteSource } from '../../models/safetensors.js';
import { encodeSafetensors, type TensorToWrite } from '../../models/safetensors-write.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../models/half.js';
import { openFileSource, writeFileAtomic } from '../../engine/node.js';
import { VitgpuError } from '../../engine/errors.js';

/** Seeded uniform [0, 1) for test inputs. */
const rng = mulberry32;

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let o = 0;
  for (const c of chunks) out.set(c, (o += c.byteLength) - c.byteLength);
  return out;
}

/** A file from a header (object or raw JSON text, unpadded) and data bytes; `declared` overrides N. */
function fileFrom(header: unknown, data: Uint8Array | number = 0, declared?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const bytes = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.byteLength + bytes.byteLength);
  new DataView(out.buffer).setBigUint64(0, declared ?? BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(bytes, 8 + json.byteLength);
  return out;
}

function hex(s: string): Uint8Array {
  return new Uint8Array(s.split(/\s+/).filter(Boolean).map((b) => parseInt(b, 16)));
}

async function rejects(promise: Promise<unknown>, pattern: RegExp, tensor?: string): Promise<SafetensorsError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, `expected a SafetensorsError matching ${pattern}`).toBeInstanceOf(SafetensorsError);
  const e = err as SafetensorsError;
  expect(e).toBeInstanceOf(VitgpuError);
  expect(e.message).toMatch(pattern);
  expect(e.message).toContain('damaged.safetensors');
  if (tensor !== undefined) {
    expect(e.tensor).toBe(tensor);
    expect(e.message).toContain(`"${tensor}"`);
  }
  return e;
}

const parse = (bytes: Uint8Array) => readHeader(bytesSource(bytes, 'damaged.safetensors'));

/** Nearest representable value among increasing finite bit patterns 0..maxBits, ties to the even pattern. */
function nearestBits(a: number, decode: (bits: number) => number, maxBits: number): number {
  let lo = 0;
  let hi = maxBits;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (decode(mid) <= a) lo = mid;
    else hi = mid - 1;
  }
  if (decode(lo) === a || lo === maxBits) return lo;
  const below = a - decode(lo);
  const above = decode(lo + 1) - a;
  return below < above ? lo : above < below ? lo + 1 : lo & 1 ? lo + 1 : lo;
}

/** Independent f16 reference: search the f16 number line (overflow threshold 65520 is IEEE's). */
function refF16(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(Math.fround(x));
  if (a >= 65520) return sign | 0x7c00;
  return sign | nearestBits(a, f16ToF32, 0x7bff);
}

/** Independent bf16 reference: the two neighbouring truncations of the f32, nearest wins, ties to even. */
function refBf16(x: number): number {
  const f = new Float32Array([x]);
  const bits = new Uint32Array(f.buffer)[0];
  const sign = bits & 0x80000000 ? 0x8000 : 0;
  const a = Math.abs(f[0]);
  if (a >= bf16ToF32(0x7f7f) + 2 ** 119) return sign | 0x7f80; // halfway to 2^128 and beyond: inf
  return sign | nearestBits(a, bf16ToF32, 0x7f7f);
}

describe('half-precision conversions', () => {
  it('f16 known values', () => {
    const cases: [number, number][] = [
      [1.0, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [2 ** -14, 0x0400], [2 ** -24, 0x0001],
      [0, 0x0000], [-0, 0x8000], [0.5, 0x3800], [Infinity, 0x7c00], [-Infinity, 0xfc00], [2 ** -24 * 1023, 0x03ff],
    ];
    for (const [value, bits] of cases) {
      expect(f32ToF16(value), `f32ToF16(${value})`).toBe(bits);
      expect(Object.is(f16ToF32(bits), value), `f16ToF32(0x${bits.toString(16)})`).toBe(true);
    }
    expect(f32ToF16(6.1035e-5)).toBe(0x0400); // the min normal as usually written
    expect(f32ToF16(5.96e-8)).toBe(0x0001); // the min subnormal as usually written
    expect(f32ToF16(NaN) & 0x7c00).toBe(0x7c00);
    expect(f32ToF16(NaN) & 0x3ff).not.toBe(0);
    expect(f16ToF32(0x7e00)).toBeNaN();
    expect(f16ToF32(0xfc01)).toBeNaN();
    // Rounding: overflow at 65520, ties to even, underflow below half the smallest subnormal.
    expect(f32ToF16(65519)).toBe(0x7bff);
    expect(f32ToF16(65520)).toBe(0x7c00);
    expect(f32ToF16(1 + 2 ** -11)).toBe(0x3c00); // tie, 0x3c00 even
    expect(f32ToF16(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie, 0x3c02 even
    expect(f32ToF16(2 ** -25)).toBe(0x0000); // tie between 0 and min subnormal
    expect(f32ToF16(1.5 * 2 ** -25)).toBe(0x0001);
    expect(f32ToF16(3 * 2 ** -25)).toBe(0x0002); // tie between 1 and 2 subnormal steps
    expect(f32ToF16(2 ** -14 - 2 ** -26)).toBe(0x0400); // rounds up from subnormal into the min normal
  });

  it('f16 rounding matches a brute-force nearest search on 20k values, ties included', () => {
    const next = rng(7);
    for (let n = 0; n < 20000; n++) {
      let x: number;
      if (n % 3 === 0) {
        const k = Math.floor(next() * 0x7bff); // exact midpoint of two neighbours
        x = (f16ToF32(k) + f16ToF32(k + 1)) / 2;
      } else {
        x = Math.fround((next() + 0.5) * 2 ** Math.floor(next() * 48 - 30));
      }
      if (next() < 0.5) x = -x;
      expect(f32ToF16(x), `f32ToF16(${x})`).toBe(refF16(x));
    }
    for (let bits = 0; bits < 0x10000; bits++) {
      const v = f16ToF32(bits);
      if (!Number.isNaN(v)) expect(f32ToF16(v)).toBe(bits);
    }
  });

  it('bf16 known values, rounding and a brute-force check', () => {
    expect(f32ToBf16(1.0)).toBe(0x3f80);
    expect(bf16ToF32(0x3f80)).toBe(1.0);
    expect(f32ToBf16(-2)).toBe(0xc000);
    expect(f32ToBf16(1 + 2 ** -8)).toBe(0x3f80); // tie, even stays
    expect(f32ToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie, rounds up to even
    expect(f32ToBf16(1 + 2 ** -8 + 2 ** -20)).toBe(0x3f81); // just above the tie
    expect(f32ToBf16(Infinity)).toBe(0x7f80);
    expect(Number.isNaN(bf16ToF32(f32ToBf16(NaN)))).toBe(true);
    expect(f32ToBf16(3.4028234663852886e38)).toBe(0x7f80); // f32 max rounds past bf16 max
    const next = rng(11);
    for (let n = 0; n < 20000; n++) {
      const x = Math.fround((next() - 0.5) * 2 ** Math.floor(next() * 200 - 100));
      expect(f32ToBf16(x), `f32ToBf16(${x})`).toBe(refBf16(x));
    }
  });
});

describe('reading and writing', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vitgpu-safetensors-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const sample = (): TensorToWrite[] => {
    const next = rng(3);
    const vals = (n: number, scale = 4) => Float32Array.from({ length: n }, () => (next() - 0.5) * scale);
    return [
      { name: 'blocks.0.attn.qkv.weight', dtype: 'F32', shape: [3, 5], data: vals(15) },
      { name: 'pos_embed', dtype: 'F16', shape: [1, 7, 3], data: vals(21, 200) },
      { name: 'cls_token', dtype: 'BF16', shape: [1, 1, 3], data: vals(3) },
      { name: '10', dtype: 'F16', shape: [3], data: Float32Array.of(1e-7, 70000, -0) },
      { name: 'empty', dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
      { name: 'scalar', dtype: 'BF16', shape: [], data: Float32Array.of(3.14159) },
    ];
  };
  const expected = (t: TensorToWrite) =>
    t.dtype === 'F32' ? t.data : t.data.map((v) => (t.dtype === 'F16' ? f16ToF32(refF16(v)) : bf16ToF32(refBf16(v))));

  it('round trips F32/F16/BF16 and metadata in memory, laid out in the given order', async () => {
    const tensors = sample();
    const metadata = { format: 'pt', note: 'ünïcode ✓', __proto__x: '1' };
    const chunks = encodeSafetensors(tensors, metadata);
    expect(chunks.length).toBe(tensors.length + 1);
    expect(chunks[0].byteLength % 8).toBe(0);
    const bytes = concat(chunks);
    const src = bytesSource(bytes, 'mem.safetensors');
    const header = await readHeader(src);
    expect(header.dataStart).toBe(chunks[0].byteLength);
    expect(header.headerSize).toBe(chunks[0].byteLength - 8);
    expect(header.metadata).toEqual(metadata);
    expect([...header.tensors.keys()].sort()).toEqual(tensors.map((t) => t.name).sort());
    let pos = header.dataStart;
    for (const t of tensors) {
      const info = header.tensors.get(t.name)!;
      expect(info).toMatchObject({ dtype: t.dtype, shape: t.shape, begin: pos });
      pos = info.end;
      expect(Array.from(await readTensorF32(src, info))).toEqual(Array.from(expected(t)));
    }
    expect(pos).toBe(bytes.byteLength);
  });

  it('round trips through a file written atomically and read with positioned reads', async () => {
    const path = join(dir, 'model.safetensors');
    await writeFile(path, 'old contents');
    const tensors = sample();
    await writeFileAtomic(path, encodeSafetensors(tensors, { format: 'pt' }));
    expect((await readdir(dir)).filter((f) => f.includes('.tmp-'))).toEqual([]);
    const file = await openFileSource(path);
    try {
      expect(file.name).toBe(path);
      const header = await readHeader(file);
      expect(header.metadata).toEqual({ format: 'pt' });
      for (const t of tensors) {
        expect(Array.from(await readTensorF32(file, header.tensors.get(t.name)!))).toEqual(Array.from(expected(t)));
      }
    } finally {
      await file.close();
    }
    // The same bytes as the in-memory encoder, and the same values through a Blob (the browser path).
    const onDisk = new Uint8Array(await readFile(path));
    expect(onDisk).toEqual(concat(encodeSafetensors(tensors, { format: 'pt' })));
    const blob = blobSource(new Blob([onDisk]), 'blob.safetensors');
    const header = await readHeader(blob);
    const t = tensors[1];
    expect(Array.from(await readTensorF32(blob, header.tensors.get(t.name)!))).toEqual(Array.from(expected(t)));
  });

  it('a failed write leaves the target and no temporary file behind', async () => {
    const path = join(dir, 'keep.safetensors');
    await writeFile(path, 'previous');
    const dup: TensorToWrite[] = [
      { name: 'a', dtype: 'F32', shape: [1], data: Float32Array.of(1) },
      { name: 'a', dtype: 'F32', shape: [1], data: Float32Array.of(2) },
    ];
    // Encoding errors come before any file exists.
    await expect(async () => writeFileAtomic(path, encodeSafetensors(dup))).rejects.toThrow(/tensor "a": name used by more than one tensor/);
    await expect(writeFileAtomic(join(dir, 'no-such-dir', 'x.safetensors'), encodeSafetensors(sample()))).rejects.toThrow(/ENOENT/);
    expect(await readFile(path, 'utf8')).toBe('previous');
    expect((await readdir(dir)).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('the writer rejects bad input with the tensor named', () => {
    const one = (t: Partial<TensorToWrite>) => () =>
      encodeSafetensors([{ name: 'w', dtype: 'F32', shape: [2], data: new Float32Array(2), ...t } as TensorToWrite]);
    expect(one({ shape: [3] })).toThrow(/tensor "w": shape \[3\] has 3 elements but the data has 2/);
    expect(one({ dtype: 'I8' as 'F32' })).toThrow(/tensor "w": cannot write dtype "I8"/);
    expect(one({ shape: [-2] })).toThrow(SafetensorsError);
    expect(one({ name: '__metadata__' })).toThrow(/reserved/);
    expect(() => encodeSafetensors([], { a: 1 as unknown as string })).toThrow(/metadata value for "a" must be a string/);
  });

  it('reads a file laid out as Python safetensors writes it', async () => {
    // safetensors.torch.save_file({"a": f32 [2,2], "b": f16 [3], "c": bf16 [2]}, metadata={"format": "pt"}):
    // metadata first, tensors sorted by alignment then name, compact JSON padded with spaces to 8 bytes.
    const json =
      '{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},' +
      '"b":{"dtype":"F16","shape":[3],"data_offsets":[16,22]},"c":{"dtype":"BF16","shape":[2],"data_offsets":[22,26]}}';
    const padded = json + ' '.repeat((8 - (json.length % 8)) % 8);
    const data = hex(`
      00 00 80 3f  00 00 00 c0  00 00 00 3f  00 00 50 40
      00 3c  00 c0  ff 7b
      80 3f  00 bf`);
    const file = fileFrom(padded, data);
    expect(file.byteLength).toBe(8 + padded.length + 26);
    const src = bytesSource(file, 'python.safetensors');
    const header = await readHeader(src);
    expect(header.headerSize).toBe(padded.length);
    expect(header.metadata).toEqual({ format: 'pt' });
    expect(header.tensors.get('b')).toEqual({ name: 'b', dtype: 'F16', shape: [3], begin: 8 + padded.length + 16, end: 8 + padded.length + 22 });
    expect(Array.from(await readTensorF32(src, header.tensors.get('a')!))).toEqual([1, -2, 0.5, 3.25]);
    expect(Array.from(await readTensorF32(src, header.tensors.get('b')!))).toEqual([1, -2, 65504]);
    expect(Array.from(await readTensorF32(src, header.tensors.get('c')!))).toEqual([1, -0.5]);
    // Our writer produces the same layout for the same tensors in the same order.
    const ours = concat(
      encodeSafetensors(
        [
          { name: 'a', dtype: 'F32', shape: [2, 2], data: Float32Array.of(1, -2, 0.5, 3.25) },
          { name: 'b', dtype: 'F16', shape: [3], data: Float32Array.of(1, -2, 65504) },
          { name: 'c', dtype: 'BF16', shape: [2], data: Float32Array.of(1, -0.5) },
        ],
        { format: 'pt' },
      ),
    );
    expect(ours).toEqual(file);
  });

  it('reads F64 and refuses integer dtypes as f32', async () => {
    const data = new Uint8Array(16 + 4);
    new DataView(data.buffer).setFloat64(0, 0.1, true);
    new DataView(data.buffer).setFloat64(8, -1e300, true);
    const src = bytesSource(
      fileFrom({ d: { dtype: 'F64', shape: [2], data_offsets: [0, 16] }, ids: { dtype: 'I32', shape: [1], data_offsets: [16, 20] } }, data),
      'damaged.safetensors',
    );
    const header = await readHeader(src);
    expect(Array.from(await readTensorF32(src, header.tensors.get('d')!))).toEqual([Math.fround(0.1), -Infinity]);
    await rejects(readTensorF32(src, header.tensors.get('ids')!), /dtype I32 cannot be loaded as f32/, 'ids');
  });

  it('reads a 20 MB F16 tensor from a file in bounded chunks', async () => {
    const n = 10 * 1024 * 1024;
    const next = rng(5);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = (next() - 0.5) * 8;
    const path = join(dir, 'big.safetensors');
    await writeFileAtomic(path, encodeSafetensors([{ name: 'big', dtype: 'F16', shape: [n / 1024, 1024], data }]));
    const file = await openFileSource(path);
    const reads: number[] = [];
    const recording: ByteSource = {
      size: file.size,
      name: file.name,
      read: (offset, length) => (reads.push(length), file.read(offset, length)),
    };
    try {
      const header = await readHeader(recording);
      const values = await readTensorF32(recording, header.tensors.get('big')!);
      expect(Math.max(...reads)).toBeLessThanOrEqual(16 * 1024 * 1024);
      expect(reads.length).toBe(2 + 2); // length, header, two chunks
      for (let i = 0; i < n; i += 997) expect(values[i]).toBe(f16ToF32(refF16(data[i])));
      const small: number[] = [];
      const chunked = await readTensorF32(
        { ...recording, read: (o, l) => (small.push(l), file.read(o, l)) },
        header.tensors.get('big')!,
        { chunkBytes: 1_000_001 },
      );
      expect(Math.max(...small)).toBe(1_000_000); // rounded down to whole elements
      let same = chunked.length === values.length;
      for (let i = 0; same && i < n; i++) same = Object.is(chunked[i], values[i]);
      expect(same).toBe(true); // a loop: toEqual on 10M elements takes minutes
    } finally {
      await file.close();
    }
  });
});

describe('damaged files', () => {
  const w = (name = 'w', dtype = 'F32', shape: unknown = [2], offsets: unknown = [0, 8]) => ({
    [name]: { dtype, shape, data_offsets: offsets },
  });

  it('truncated files', async () => {
    await rejects(parse(new Uint8Array(0)), /0 bytes, too short for the 8-byte header length/);
    await rejects(parse(new Uint8Array(5)), /5 bytes, too short/);
    const good = fileFrom(w(), 8);
    await rejects(parse(good.subarray(0, 20)), /header length \d+ bytes runs past the end of the file \(20 bytes/);
    await rejects(parse(good.subarray(0, good.byteLength - 3)), /data_offsets \[0, 8\] run past the end of the data \(5 bytes; file cut short/, 'w');
    await expect(parse(good)).resolves.toBeTruthy();
  });

  it('huge or zero header lengths are rejected before anything is read', async () => {
    await rejects(parse(fileFrom(w(), 8, 2n ** 40n)), /header length 1099511627776 bytes exceeds the 100000000-byte limit/);
    await rejects(parse(fileFrom(w(), 8, 2n ** 63n)), /header length 9223372036854775808 bytes exceeds/);
    await rejects(parse(fileFrom(w(), 8, 2n ** 64n - 1n)), /header length 18446744073709551615 bytes exceeds/);
    await rejects(parse(fileFrom(w(), 8, 0n)), /header length is 0/);
    await rejects(parse(fileFrom(w(), 8, 1000n)), /header length 1000 bytes runs past the end of the file/);
    // A source claiming 2 TB whose header length says 2^40: only the 8 length bytes may be read.
    const reads: [number, number][] = [];
    const lengthBytes = new Uint8Array(8);
    new DataView(lengthBytes.buffer).setBigUint64(0, 2n ** 40n, true);
    const huge: ByteSource = {
      size: 2 ** 41,
      name: 'damaged.safetensors',
      read: async (offset, length) => {
        reads.push([offset, length]);
        if (offset === 0 && length === 8) return lengthBytes;
        throw new Error('read beyond the length prefix');
      },
    };
    await rejects(readHeader(huge), /exceeds the 100000000-byte limit/);
    expect(reads).toEqual([[0, 8]]);
  });

  it('bad JSON, non-object JSON, bad UTF-8', async () => {
    const e = await rejects(parse(fileFrom('{"w": {"dtype": "F32",, "shape": [2]}}', 8)), /header is not valid JSON at character 22/);
    expect(e.message).toContain('near');
    await rejects(parse(fileFrom('{"a":}', 8)), /not valid JSON at character 5/);
    await rejects(parse(fileFrom('{"a": 1', 8)), /not valid JSON at character 7/);
    await rejects(parse(fileFrom('[1, 2]', 8)), /header JSON must be an object, got an array/);
    await rejects(parse(fileFrom('null', 8)), /must be an object, got null/);
    await rejects(parse(fileFrom('"text"', 8)), /must be an object, got "text"/);
    const bad = fileFrom('{"w":"xx"}', 8);
    bad[13] = 0xff;
    await rejects(parse(bad), /header is not valid UTF-8/);
  });

  it('entries: not an object, unknown dtype, bad shapes, byte count mismatch', async () => {
    await rejects(parse(fileFrom({ w: [1, 2] }, 8)), /entry must be an object/, 'w');
    await rejects(parse(fileFrom(w('w', 'Q4'), 8)), /unknown dtype "Q4"/, 'w');
    await rejects(parse(fileFrom(w('w', 'toString' as string), 8)), /unknown dtype "toString"/, 'w');
    await rejects(parse(fileFrom({ w: { shape: [2], data_offsets: [0, 8] } }, 8)), /unknown dtype undefined/, 'w');
    await rejects(parse(fileFrom(w('w', 'F32', [-2]), 8)), /shape \[-2\] has -2, not a non-negative integer/, 'w');
    await rejects(parse(fileFrom(w('w', 'F32', [2.5]), 8)), /has 2.5, not a non-negative integer/, 'w');
    await rejects(parse(fileFrom(w('w', 'F32', ['2']), 8)), /has "2", not a non-negative integer/, 'w');
    await rejects(parse(fileFrom(w('w', 'F32', 2), 8)), /shape must be an array/, 'w');
    await rejects(parse(fileFrom(w('w', 'F32', [2 ** 30, 2 ** 30, 2 ** 30]), 8)), /too many elements/, 'w');
    await rejects(parse(fileFrom(w('w', 'F64', [2 ** 50]), 8)), /too many bytes/, 'w');
    await rejects(parse(fileFrom(w('w', 'F32', [3]), 8)), /data_offsets \[0, 8\] hold 8 bytes but shape \[3\] of F32 needs 12/, 'w');
    await rejects(parse(fileFrom(w('w', 'F16', [2, 3]), 8)), /hold 8 bytes but shape \[2,3\] of F16 needs 12/, 'w');
  });

  it('offsets: past the end, begin > end, malformed, overlapping', async () => {
    await rejects(parse(fileFrom(w('w', 'F32', [2], [8, 16]), 8)), /data_offsets \[8, 16\] run past the end of the data \(8 bytes/, 'w');
    await rejects(parse(fileFrom(w('w', 'F32', [2], [8, 0]), 8)), /data_offsets \[8, 0\] has begin > end/, 'w');
    await rejects(parse(fileFrom(w('w', 'F32', [2], [0]), 8)), /data_offsets must be \[begin, end\]/, 'w');
    await rejects(parse(fileFrom(w('w', 'F32', [2], [-8, 0]), 8)), /data_offsets must be/, 'w');
    await rejects(parse(fileFrom(w('w', 'F32', [2], [0, 2 ** 64]), 8)), /data_offsets must be/, 'w');
    await rejects(parse(fileFrom(w('w', 'F32', [2], null), 8)), /data_offsets must be/, 'w');
    const overlapping = { ...w('a', 'F32', [3], [0, 12]), ...w('b', 'F32', [2], [8, 16]), ...w('c', 'F32', [1], [16, 20]) };
    await rejects(parse(fileFrom(overlapping, 20)), /data \[8, 16\) overlaps tensor "a" at \[0, 12\)/, 'b');
    const nested = { ...w('outer', 'F32', [4], [0, 16]), ...w('inner', 'F32', [1], [4, 8]) };
    await rejects(parse(fileFrom(nested, 16)), /overlaps tensor "outer"/, 'inner');
    // Adjacent tensors and empty tensors anywhere are fine.
    const fine = { ...w('b', 'F32', [2], [8, 16]), ...w('a', 'F32', [2], [0, 8]), ...w('e', 'F32', [0, 5], [4, 4]) };
    expect([...(await parse(fileFrom(fine, 16))).tensors.keys()]).toEqual(['b', 'a', 'e']);
  });

  it('bad __metadata__', async () => {
    await rejects(parse(fileFrom({ __metadata__: 'pt', ...w() }, 8)), /__metadata__ must be an object of strings, got "pt"/);
    await rejects(parse(fileFrom({ __metadata__: ['a'], ...w() }, 8)), /__metadata__ must be an object/);
    await rejects(parse(fileFrom({ __metadata__: { format: 1 }, ...w() }, 8)), /__metadata__ value for "format" must be a string, got 1/);
    const h = await parse(fileFrom('{"__metadata__":{"__proto__":"x"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', 8));
    expect(Object.keys(h.metadata)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(h.metadata)).toBe(Object.prototype);
  });

  it('a file cut after readHeader gives a SafetensorsError from readTensorF32', async () => {
    const good = fileFrom(w(), 8);
    const header = await parse(good);
    const cut: ByteSource = { size: good.byteLength, name: 'damaged.safetensors', read: async (o, l) => good.subarray(o, Math.min(o + l, good.byteLength - 2)) };
    await rejects(readTensorF32(cut, header.tensors.get('w')!), /read 6 of 8 bytes at offset \d+ \(file cut short/, 'w');
  });

  it('jsonErrorPosition agrees with JSON.parse', () => {
    const next = rng(9);
    const alphabet = '{}[]:,"\\ 0123-.eE+truefalsenullab\n\u0001';
    for (let n = 0; n < 3000; n++) {
      let s = '';
      const len = Math.floor(next() * 12);
      for (let i = 0; i < len; i++) s += alphabet[Math.floor(next() * alphabet.length)];
      if (n % 2) s = JSON.stringify({ a: [1, 's', { b: null }] }).slice(0, Math.floor(next() * 22)) + s;
      let ok = true;
      try {
        JSON.parse(s);
      } catch {
        ok = false;
      }
      const pos = jsonErrorPosition(s);
      expect(pos === -1, JSON.stringify(s)).toBe(ok);
    }
    expect(jsonErrorPosition('['.repeat(1_000_000))).toBe(1_000_000);
  });
});

describe('fuzz', () => {
  it('3000 seeded mutations of a valid file: each parses or throws SafetensorsError, nothing else', async () => {
    const base = concat(
      encodeSafetensors(
        [
          { name: 'w', dtype: 'F32', shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6) },
          { name: 'h', dtype: 'F16', shape: [4], data: Float32Array.of(0.5, -1, 65504, 1e-7) },
          { name: 'b', dtype: 'BF16', shape: [2, 2], data: Float32Array.of(1, -1, 3, 1e30) },
        ],
        { format: 'pt' },
      ),
    );
    const baseN = Number(new DataView(base.buffer).getBigUint64(0, true));
    const baseHeader = JSON.parse(new TextDecoder().decode(base.subarray(8, 8 + baseN))) as Record<string, Record<string, unknown>>;
    const baseData = base.subarray(8 + baseN);
    const next = rng(2024);
    const int = (n: number) => Math.floor(next() * n);
    const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
    const oddNumbers = [-1, 0, 1, 2, 3, 4, 7, 8, 12, 16, 2.5, 1e20, 2 ** 53, 2 ** 31, -0, '3', null, true, [], {}];

    const mutateJson = (): Uint8Array => {
      const h = structuredClone(baseHeader) as Record<string, unknown>;
      const names = Object.keys(h).filter((k) => k !== '__metadata__');
      for (let m = next() < 0.6 ? 1 : 2 + int(2); m > 0; m--) {
        const name = pick(names);
        const entry = h[name];
        const e = (typeof entry === 'object' && entry !== null ? entry : (h[name] = {})) as Record<string, unknown>;
        if (!Array.isArray(e.data_offsets)) e.data_offsets = [0, 0];
        switch (int(11)) {
          case 0: e.dtype = pick(['F32', 'F16', 'BF16', 'F64', 'I64', 'I8', 'U8', 'BOOL', 'Q4', 'f32', '', 5, null]); break;
          case 1: if (Array.isArray(e.shape) && e.shape.length) (e.shape as unknown[])[int(e.shape.length)] = pick(oddNumbers); break;
          case 2: e.shape = pick([[], [1], [0], [2, 2, 2], [24], [1e6, 1e6, 1e6], 'x', null, [-1]]); break;
          case 3: (e.data_offsets as unknown[])[int(2)] = pick(oddNumbers); break;
          case 4: (e.data_offsets as unknown[])[int(2)] = int(40); break;
          case 5: delete e[pick(['dtype', 'shape', 'data_offsets'])]; break;
          case 6: h.__metadata__ = pick([{ format: 7 }, 'pt', [], null, { a: 'b' }, {}]); break;
          case 7: h[`dup${int(3)}`] = { ...e, data_offsets: [int(24), int(40)] }; break;
          case 8: h[name] = pick([null, 1, 'x', [], {}]); break;
          // Edits that keep the file valid: a same-size dtype, a new name, a reshape with the same count.
          case 9: e.dtype = e.dtype === 'F32' ? pick(['I32', 'U32', 'F32']) : pick(['F16', 'BF16', 'I16', 'U16']); break;
          case 10: h[`${name}.renamed`] = e; delete h[name]; break;
        }
      }
      let text = JSON.stringify(h);
      if (next() < 0.3) text += ' '.repeat(int(9));
      return fileFrom(text, next() < 0.8 ? baseData : baseData.subarray(0, int(baseData.byteLength)));
    };

    const mutateBytes = (): Uint8Array => {
      let f: Uint8Array = base.slice();
      for (let m = next() < 0.6 ? 1 : 2 + int(2); m > 0; m--) {
        const kind = int(6);
        if (kind === 0 && f.byteLength) f[int(f.byteLength)] = int(256); // flip a byte anywhere
        else if (kind === 5 && f.byteLength > 8 + baseN) f[8 + baseN + int(f.byteLength - 8 - baseN)] = int(256); // in the data
        else if (kind === 1 && f.byteLength > 8) f[8 + int(Math.min(baseN, f.byteLength - 8))] = int(256); // in the header
        else if (kind === 2) f = f.slice(0, int(f.byteLength + 1)); // truncate
        else if (kind === 3 && f.byteLength >= 8) {
          const dv = new DataView(f.buffer, f.byteOffset, f.byteLength);
          dv.setBigUint64(0, pick([BigInt(baseN + int(17) - 8), BigInt(int(2 ** 31)) << BigInt(int(33)), 2n ** 63n, 0n, BigInt(f.byteLength)]), true);
        } else if (kind === 4 && f.byteLength > 8) {
          // Insert or delete one header byte, keeping the declared length consistent.
          const at = 8 + int(baseN);
          const text = f.slice(8, 8 + baseN);
          const edited = next() < 0.5 ? concat([text.subarray(0, at - 8), text.subarray(at - 7)]) : concat([text.subarray(0, at - 8), Uint8Array.of(int(128)), text.subarray(at - 8)]);
          f = fileFrom(new TextDecoder().decode(edited), f.subarray(8 + baseN));
        }
      }
      return f;
    };

    const stats = { parsed: 0, rejected: 0, tensorsRead: 0, tensorsRefused: 0 };
    const problems = new Map<string, number>();
    const start = performance.now();
    for (let n = 0; n < 3000; n++) {
      const file = n % 2 ? mutateJson() : mutateBytes();
      const src = bytesSource(file, 'fuzz.safetensors');
      const describeCase = () => `case ${n}: ${JSON.stringify(new TextDecoder().decode(file.subarray(0, 200)))}`;
      try {
        const header = await readHeader(src);
        stats.parsed++;
        for (const info of header.tensors.values()) {
          expect(info.begin).toBeGreaterThanOrEqual(header.dataStart);
          expect(info.end).toBeLessThanOrEqual(file.byteLength);
          try {
            const values = await readTensorF32(src, info);
            expect(values.length).toBe(info.shape.reduce((a, b) => a * b, 1));
            stats.tensorsRead++;
          } catch (err) {
            if (!(err instanceof SafetensorsError)) throw new Error(`${describeCase()} readTensorF32 threw ${String(err)}`);
            expect(err.message).toMatch(/cannot be loaded as f32/);
            stats.tensorsRefused++;
          }
        }
      } catch (err) {
        if (!(err instanceof SafetensorsError)) throw new Error(`${describeCase()} readHeader threw ${String(err)}`);
        expect(err.message.startsWith('fuzz.safetensors: ')).toBe(true);
        stats.rejected++;
        const kind = err.problem.split(/[^a-zA-Z_ ]/)[0].trim();
        problems.set(kind, (problems.get(kind) ?? 0) + 1);
      }
    }
    const seconds = (performance.now() - start) / 1000;
    console.log(`safetensors fuzz: ${JSON.stringify(stats)} in ${seconds.toFixed(2)} s; rejections:`, Object.fromEntries(problems));
    expect(stats.parsed + stats.rejected).toBe(3000);
    expect(stats.parsed).toBeGreaterThan(100);
    expect(stats.rejected).toBeGreaterThan(1000);
    expect(seconds).toBeLessThan(10);
  });
});
