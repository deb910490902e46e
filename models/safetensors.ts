// The safetensors weight format: a validating, streaming reader (the writer is safetensors-write.ts). Browser-safe.
//
// Layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
// (`{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}`), then the raw
// little-endian tensor data; offsets are relative to the end of the header.
//
// A checkpoint is untrusted input: readHeader() checks every number before using it (so a file
// claiming a 2^40-byte header is rejected before anything is allocated), and readTensorF32() reads
// one tensor's byte range in bounded chunks, so loading a model tensor by tensor never holds the file
// twice. The data comes through a ByteSource: an in-memory buffer, a browser Blob/File, or a Node
// FileHandle (openFileSource in engine/node.ts).

import { VitgpuError } from '../engine/errors.js';
import { f16Table } from './half.js';

/** A malformed or unreadable safetensors file; the message names the file and, where one is at fault, the tensor. */
export class SafetensorsError extends VitgpuError {
  constructor(
    readonly source: string,
    readonly problem: string,
    readonly tensor?: string,
  ) {
    super(`${source}: ${tensor === undefined ? '' : `tensor ${JSON.stringify(tensor)}: `}${problem}`);
  }
}

/** Random access to the bytes of a file, wherever they live. */
export interface ByteSource {
  /** Total size in bytes. */
  size: number;
  /**
   * Bytes [offset, offset + length). Returns exactly `length` bytes unless the range runs past the end
   * of the source, where it returns what there is; the result may share memory with the source.
   */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** The label errors use (a path, a URL, a file name). */
  name: string;
}

/** A ByteSource over bytes already in memory (a fetched ArrayBuffer, a test fixture). */
export function bytesSource(buf: Uint8Array | ArrayBuffer, name: string): ByteSource {
  const bytes = buf instanceof Uint8Array ? buf : new Uint8Array(buf);
  return {
    size: bytes.byteLength,
    name,
    read: async (offset, length) => bytes.subarray(offset, offset + length),
  };
}

/** A ByteSource over a Blob (a browser File from an <input> or drag and drop): reads only the ranges asked for. */
export function blobSource(blob: Blob, name: string): ByteSource {
  return {
    size: blob.size,
    name,
    read: async (offset, length) => new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer()),
  };
}

export type Dtype =
  | 'F64' | 'F32' | 'F16' | 'BF16' | 'F8_E4M3' | 'F8_E5M2'
  | 'I64' | 'I32' | 'I16' | 'I8' | 'U64' | 'U32' | 'U16' | 'U8' | 'BOOL';

/** Bytes per element of every dtype the format defines (only the float ones load as f32). */
export const DTYPE_SIZES: ReadonlyMap<string, number> = new Map<Dtype, number>([
  ['F64', 8], ['F32', 4], ['F16', 2], ['BF16', 2], ['F8_E4M3', 1], ['F8_E5M2', 1],
  ['I64', 8], ['I32', 4], ['I16', 2], ['I8', 1], ['U64', 8], ['U32', 4], ['U16', 2], ['U8', 1], ['BOOL', 1],
]);

const F32_LOADABLE = ['F32', 'F16', 'BF16', 'F64'];

export interface TensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** Absolute byte offsets in the file: [begin, end). */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** N, the JSON header's length in bytes. */
  headerSize: number;
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
  /** Absolute offset of the data section (8 + N). */
  dataStart: number;
}

/** The reference implementation's limit; real headers are well under 1 MB. */
export const MAX_HEADER_BYTES = 100_000_000;

/** Largest single read readTensorF32 issues by default. */
export const DEFAULT_CHUNK_BYTES = 16 * 1024 * 1024;

/** A JSON object (not null, not an array). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A value as it appears in error messages: JSON, cut at 60 characters. */
export function describeValue(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Reads and validates the header; nothing in it is trusted until checked. */
export async function readHeader(src: ByteSource): Promise<SafetensorsHeader> {
  const fail = (problem: string, tensor?: string): never => {
    throw new SafetensorsError(src.name, problem, tensor);
  };
  const size = src.size;
  if (!Number.isSafeInteger(size) || size < 0) fail(`invalid file size ${size}`);
  if (size < 8) fail(`file is ${size} bytes, too short for the 8-byte header length`);

  const lenBytes = await src.read(0, 8);
  if (lenBytes.byteLength < 8) fail(`read ${lenBytes.byteLength} of the 8 header-length bytes (file cut short)`);
  const lenView = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8);
  const lenBig = lenView.getBigUint64(0, true);
  if (lenBig > BigInt(MAX_HEADER_BYTES)) {
    fail(`header length ${lenBig} bytes exceeds the ${MAX_HEADER_BYTES}-byte limit (corrupt or not a safetensors file)`);
  }
  const n = Number(lenBig);
  if (n === 0) fail('header length is 0 (corrupt or not a safetensors file)');
  if (n > size - 8) fail(`header length ${n} bytes runs past the end of the file (${size} bytes, so at most ${size - 8})`);

  const headerBytes = await src.read(8, n);
  if (headerBytes.byteLength < n) fail(`read ${headerBytes.byteLength} of the ${n} header bytes (file cut short)`);
  let text = '';
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    fail('header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    // Node 20's messages do not always give the position ("Unexpected token '}', ... is not valid JSON").
    const pos = jsonErrorPosition(text);
    const where = pos < 0 ? '' : ` at character ${pos} (near ${JSON.stringify(text.slice(Math.max(0, pos - 20), pos + 20))})`;
    fail(`header is not valid JSON${where}: ${(err as Error).message}`);
  }
  if (!isPlainObject(json)) fail(`header JSON must be an object, got ${Array.isArray(json) ? 'an array' : describeValue(json)}`);
  const entries = json as Record<string, unknown>;

  const dataSize = size - 8 - n;
  const dataStart = 8 + n;
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  const ranges: { name: string; begin: number; end: number }[] = [];

  for (const name of Object.keys(entries)) {
    const entry = entries[name];
    if (name === '__metadata__') {
      if (!isPlainObject(entry)) fail(`__metadata__ must be an object of strings, got ${describeValue(entry)}`);
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__ value for ${JSON.stringify(k)} must be a string, got ${describeValue(v)}`);
      }
      // fromEntries defines own properties, so a key like "__proto__" stays data.
      metadata = Object.fromEntries(Object.entries(entry as Record<string, string>));
      continue;
    }
    if (!isPlainObject(entry)) fail(`entry must be an object {dtype, shape, data_offsets}, got ${describeValue(entry)}`, name);
    const e = entry as Record<string, unknown>;

    const dtype = e.dtype;
    if (typeof dtype !== 'string' || !DTYPE_SIZES.has(dtype)) {
      fail(`unknown dtype ${describeValue(dtype)} (known: ${[...DTYPE_SIZES.keys()].join(', ')})`, name);
    }
    const itemSize = DTYPE_SIZES.get(dtype as string)!;

    const shape = e.shape;
    if (!Array.isArray(shape)) fail(`shape must be an array of non-negative integers, got ${describeValue(shape)}`, name);
    let count = 1;
    for (const d of shape as unknown[]) {
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
        fail(`shape ${describeValue(shape)} has ${describeValue(d)}, not a non-negative integer`, name);
      }
      count *= d as number;
      if (count > Number.MAX_SAFE_INTEGER) fail(`shape ${describeValue(shape)} has too many elements`, name);
    }
    const nbytes = count * itemSize;
    if (nbytes > Number.MAX_SAFE_INTEGER) fail(`shape ${describeValue(shape)} of ${dtype} is too many bytes`, name);

    const offsets = e.data_offsets;
    if (
      !Array.isArray(offsets) || offsets.length !== 2 ||
      !offsets.every((o) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0)
    ) {
      fail(`data_offsets must be [begin, end] with non-negative integers, got ${describeValue(offsets)}`, name);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) fail(`data_offsets [${begin}, ${end}] has begin > end`, name);
    if (end > dataSize) {
      fail(`data_offsets [${begin}, ${end}] run past the end of the data (${dataSize} bytes; file cut short?)`, name);
    }
    if (end - begin !== nbytes) {
      fail(`data_offsets [${begin}, ${end}] hold ${end - begin} bytes but shape ${describeValue(shape)} of ${dtype} needs ${nbytes}`, name);
    }
    tensors.set(name, { name, dtype: dtype as Dtype, shape: (shape as number[]).slice(), begin: dataStart + begin, end: dataStart + end });
    if (end > begin) ranges.push({ name, begin, end });
  }

  // Empty tensors occupy no bytes and can sit anywhere; the others must not share a byte.
  ranges.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let last: (typeof ranges)[number] | undefined;
  for (const r of ranges) {
    if (last && r.begin < last.end) {
      fail(`data [${r.begin}, ${r.end}) overlaps tensor ${JSON.stringify(last.name)} at [${last.begin}, ${last.end})`, r.name);
    }
    if (!last || r.end > last.end) last = r;
  }

  return { headerSize: n, tensors, metadata, dataStart };
}

const JSON_STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const JSON_NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const JSON_LITERAL = /true|false|null/y;
const JSON_SPACE = /[ \t\n\r]*/y;

/** Index of the first character where `s` stops being JSON, or -1 if it is valid (run only after JSON.parse failed). */
export function jsonErrorPosition(s: string): number {
  const stack: string[] = [];
  let i = 0;
  const match = (re: RegExp): boolean => {
    re.lastIndex = i;
    if (!re.test(s)) return false;
    i = re.lastIndex;
    return true;
  };
  // An explicit stack rather than recursion: a hostile header may nest a million levels deep.
  let state: 'value' | 'valueOrClose' | 'key' | 'keyOrClose' | 'after' = 'value';
  for (;;) {
    match(JSON_SPACE);
    const c = s[i];
    if (state === 'keyOrClose' && c === '}') {
      stack.pop();
      i++;
      state = 'after';
    } else if (state === 'key' || state === 'keyOrClose') {
      if (!match(JSON_STRING)) return i;
      match(JSON_SPACE);
      if (s[i] !== ':') return i;
      i++;
      state = 'value';
    } else if (state === 'valueOrClose' && c === ']') {
      stack.pop();
      i++;
      state = 'after';
    } else if (state === 'value' || state === 'valueOrClose') {
      if (c === '{' || c === '[') {
        stack.push(c === '{' ? '}' : ']');
        i++;
        state = c === '{' ? 'keyOrClose' : 'valueOrClose';
      } else if (match(JSON_STRING) || match(JSON_NUMBER) || match(JSON_LITERAL)) {
        state = 'after';
      } else {
        return i;
      }
    } else {
      const close = stack.at(-1);
      if (close === undefined) return i < s.length ? i : -1;
      if (c === ',') {
        i++;
        state = close === '}' ? 'key' : 'value';
      } else if (c === close) {
        stack.pop();
        i++;
      } else {
        return i;
      }
    }
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * One tensor as f32, reading only its byte range, `chunkBytes` at a time. F32, F16, BF16 and F64 convert;
 * other dtypes are an error (they are not weights).
 */
export async function readTensorF32(
  src: ByteSource,
  info: TensorInfo,
  options: { chunkBytes?: number } = {},
): Promise<Float32Array> {
  const fail = (problem: string): never => {
    throw new SafetensorsError(src.name, problem, info.name);
  };
  if (!F32_LOADABLE.includes(info.dtype)) fail(`dtype ${info.dtype} cannot be loaded as f32 (only ${F32_LOADABLE.join(', ')})`);
  const itemSize = DTYPE_SIZES.get(info.dtype)!;
  const { begin, end } = info;
  if (!Number.isSafeInteger(begin) || !Number.isSafeInteger(end) || begin < 0 || begin > end || (end - begin) % itemSize !== 0) {
    fail(`invalid byte range [${begin}, ${end}) for ${info.dtype}`);
  }
  if (end > src.size) fail(`byte range [${begin}, ${end}) runs past the end of the file (${src.size} bytes)`);

  const count = (end - begin) / itemSize;
  const out = new Float32Array(count);
  const outBits = new Uint32Array(out.buffer);
  const outBytes = new Uint8Array(out.buffer);
  const chunk = Math.max(itemSize, Math.floor((options.chunkBytes ?? DEFAULT_CHUNK_BYTES) / itemSize) * itemSize);
  const f16 = info.dtype === 'F16' ? f16Table() : null;

  for (let pos = begin, k = 0; pos < end; ) {
    const want = Math.min(chunk, end - pos);
    const bytes = await src.read(pos, want);
    if (bytes.byteLength !== want) fail(`read ${bytes.byteLength} of ${want} bytes at offset ${pos} (file cut short or changed)`);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const n = want / itemSize;
    switch (info.dtype) {
      case 'F32':
        if (LITTLE_ENDIAN) outBytes.set(bytes, k * 4);
        else for (let i = 0; i < n; i++) out[k + i] = dv.getFloat32(4 * i, true);
        break;
      case 'F16':
        for (let i = 0; i < n; i++) out[k + i] = f16![dv.getUint16(2 * i, true)];
        break;
      case 'BF16':
        // bf16 is the top half of an f32: shifting the bits back is exact (NaN payloads included).
        for (let i = 0; i < n; i++) outBits[k + i] = dv.getUint16(2 * i, true) << 16;
        break;
      case 'F64':
        for (let i = 0; i < n; i++) out[k + i] = dv.getFloat64(8 * i, true);
        break;
    }
    pos += want;
    k += n;
  }
  return out;
}
