// The safetensors writer: tensors (f32 data, stored as F32, F16 or BF16) and string metadata to the
// bytes of a .safetensors file, in chunks that the atomic writer streams to disk.

import { f32ToBf16, f32ToF16 } from './half.js';
import { describeValue, isPlainObject, SafetensorsError } from './safetensors.js';

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
export interface TensorToWrite {
  name: string;
  dtype: 'F32' | 'F16' | 'BF16';
  shape: number[];
  data: Float32Array;
}

/**
 * Encodes tensors as a safetensors file: the first chunk is the length and JSON header (padded with
 * spaces so the data starts 8-byte aligned, as the reference implementation does), then one chunk per
 * tensor in the order given. A Node writer streams the chunks; a browser can pass them to `new Blob()`.
 * F32 chunks on little-endian hosts are views of `data`, not copies.
 */
export function encodeSafetensors(tensors: TensorToWrite[], metadata?: Record<string, string>): Uint8Array[] {
  const fail = (problem: string, tensor?: string): never => {
    throw new SafetensorsError('encodeSafetensors', problem, tensor);
  };
  const names = new Set<string>();
  const parts: string[] = [];
  if (metadata !== undefined) {
    if (!isPlainObject(metadata)) fail('metadata must be an object of strings');
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') fail(`metadata value for ${JSON.stringify(k)} must be a string, got ${describeValue(v)}`);
    }
    parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  }
  let offset = 0;
  const chunks: Uint8Array[] = [];
  for (const t of tensors) {
    if (typeof t.name !== 'string') fail(`tensor name must be a string, got ${describeValue(t.name)}`);
    if (t.name === '__metadata__') fail('"__metadata__" is reserved and cannot name a tensor', t.name);
    if (names.has(t.name)) fail('name used by more than one tensor', t.name);
    names.add(t.name);
    const itemSize = t.dtype === 'F32' ? 4 : t.dtype === 'F16' || t.dtype === 'BF16' ? 2 : fail(`cannot write dtype ${describeValue(t.dtype)} (F32, F16 or BF16)`, t.name);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`shape ${describeValue(t.shape)} must be non-negative integers`, t.name);
    }
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) fail(`shape ${describeValue(t.shape)} has ${count} elements but the data has ${t.data.length}`, t.name);
    const bytes = encodeData(t.data, t.dtype);
    parts.push(`${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":${JSON.stringify(t.shape)},"data_offsets":[${offset},${offset + count * itemSize}]}`);
    offset += count * itemSize;
    chunks.push(bytes);
  }
  // The JSON is built by hand so the keys keep the caller's order (a JS object would move "0", "1" first).
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const head = new Uint8Array(8 + padded).fill(0x20, 8);
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(json, 8);
  return [head, ...chunks];
}

function encodeData(data: Float32Array, dtype: 'F32' | 'F16' | 'BF16'): Uint8Array {
  if (dtype === 'F32' && LITTLE_ENDIAN) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const itemSize = dtype === 'F32' ? 4 : 2;
  const out = new Uint8Array(data.length * itemSize);
  const dv = new DataView(out.buffer);
  if (dtype === 'F32') for (let i = 0; i < data.length; i++) dv.setFloat32(4 * i, data[i], true);
  else if (dtype === 'F16') for (let i = 0; i < data.length; i++) dv.setUint16(2 * i, f32ToF16(data[i]), true);
  else for (let i = 0; i < data.length; i++) dv.setUint16(2 * i, f32ToBf16(data[i]), true);
  return out;
}
