// A minimal, validating ZIP directory reader over a ByteSource, browser-safe: enough for PyTorch's
// checkpoint archives (torch.save writes stored, uncompressed entries; archives over 4 GB use ZIP64).
// It reads the end-of-central-directory record, the central directory, and each entry's local header
// (for the data offset); every number is checked against the file's size before it is used, so a
// damaged archive is an error naming the file, never an oversized allocation.

import type { ByteSource } from './safetensors.js';
import { VitgpuError } from '../engine/errors.js';

export class ZipError extends VitgpuError {
  constructor(readonly source: string, problem: string) {
    super(`${source}: ${problem}`);
  }
}

export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflate, ... */
  method: number;
  compressedSize: number;
  size: number;
  /** Absolute offset of the local file header. */
  headerOffset: number;
}

const EOCD_SIG = 0x06054b50;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_EOCD_SIG = 0x06064b50;
const CENTRAL_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;
/** A central directory this large is not a checkpoint's (PyTorch writes one entry per tensor storage). */
const MAX_DIRECTORY_BYTES = 64 * 2 ** 20;

function u64(dv: DataView, at: number, fail: (p: string) => never): number {
  const v = dv.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`a ZIP64 field (${v}) is too large`);
  return Number(v);
}

/** True when the bytes start like a ZIP archive (a local file header). */
export function isZip(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04;
}

/** The entries of the archive in `src`, by name. */
export async function readZipDirectory(src: ByteSource): Promise<Map<string, ZipEntry>> {
  const fail = (problem: string): never => {
    throw new ZipError(src.name, problem);
  };
  // The EOCD record is 22 bytes plus a comment of up to 65535 bytes at the very end.
  const tailLen = Math.min(src.size, 22 + 65535);
  if (src.size < 22) fail('not a ZIP archive (too short)');
  const tail = await src.read(src.size - tailLen, tailLen);
  const tv = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tv.getUint32(i, true) === EOCD_SIG && i + 22 + tv.getUint16(i + 20, true) === tail.length) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) fail('not a ZIP archive, or cut short (no end-of-central-directory record)');
  let count = tv.getUint16(eocd + 10, true);
  let dirSize = tv.getUint32(eocd + 12, true);
  let dirOffset = tv.getUint32(eocd + 16, true);
  if (count === 0xffff || dirSize === 0xffffffff || dirOffset === 0xffffffff) {
    const loc = eocd - 20;
    if (loc < 0 || tv.getUint32(loc, true) !== ZIP64_LOCATOR_SIG) fail('ZIP64 archive without its locator record');
    const z64At = u64(tv, loc + 8, fail);
    if (z64At + 56 > src.size) fail('ZIP64 end record lies past the end of the file');
    const z = await src.read(z64At, 56);
    const zv = new DataView(z.buffer, z.byteOffset, z.byteLength);
    if (z.length !== 56 || zv.getUint32(0, true) !== ZIP64_EOCD_SIG) fail('bad ZIP64 end-of-central-directory record');
    count = u64(zv, 32, fail);
    dirSize = u64(zv, 40, fail);
    dirOffset = u64(zv, 48, fail);
  }
  if (dirSize > MAX_DIRECTORY_BYTES) fail(`central directory of ${dirSize} bytes is implausibly large`);
  if (dirOffset + dirSize > src.size) fail('central directory lies past the end of the file');
  const dir = await src.read(dirOffset, dirSize);
  if (dir.length !== dirSize) fail('central directory cut short');
  const dv = new DataView(dir.buffer, dir.byteOffset, dir.byteLength);
  const entries = new Map<string, ZipEntry>();
  const decoder = new TextDecoder('utf-8', { fatal: false });
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > dir.length || dv.getUint32(p, true) !== CENTRAL_SIG) fail(`central directory entry ${i} is damaged`);
    const method = dv.getUint16(p + 10, true);
    let compressedSize = dv.getUint32(p + 20, true);
    let size = dv.getUint32(p + 24, true);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    let headerOffset = dv.getUint32(p + 42, true);
    if (p + 46 + nameLen + extraLen + commentLen > dir.length) fail(`central directory entry ${i} runs past the directory`);
    const name = decoder.decode(dir.subarray(p + 46, p + 46 + nameLen));
    // ZIP64 sizes and offsets live in extra field 0x0001, in this order, only where the 32-bit field is full.
    let e = p + 46 + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = dv.getUint16(e, true);
      const len = dv.getUint16(e + 2, true);
      if (e + 4 + len > extraEnd) fail(`entry "${name}": damaged extra field`);
      if (id === 0x0001) {
        let q = e + 4;
        const take = () => {
          if (q + 8 > e + 4 + len) fail(`entry "${name}": short ZIP64 extra field`);
          const v = u64(dv, q, fail);
          q += 8;
          return v;
        };
        if (size === 0xffffffff) size = take();
        if (compressedSize === 0xffffffff) compressedSize = take();
        if (headerOffset === 0xffffffff) headerOffset = take();
      }
      e += 4 + len;
    }
    if (headerOffset + 30 > src.size || headerOffset + compressedSize > src.size) fail(`entry "${name}" lies past the end of the file`);
    if (entries.has(name)) fail(`entry "${name}" appears twice`);
    entries.set(name, { name, method, compressedSize, size, headerOffset });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

/** Absolute offset and length of a stored (uncompressed) entry's bytes. */
export async function storedEntryRange(src: ByteSource, entry: ZipEntry): Promise<{ begin: number; end: number }> {
  const fail = (problem: string): never => {
    throw new ZipError(src.name, problem);
  };
  if (entry.method !== 0) fail(`entry "${entry.name}" is compressed (method ${entry.method}); only stored entries are read, as torch.save writes them`);
  if (entry.compressedSize !== entry.size) fail(`entry "${entry.name}": stored sizes disagree (${entry.compressedSize} vs ${entry.size})`);
  const h = await src.read(entry.headerOffset, 30);
  const hv = new DataView(h.buffer, h.byteOffset, h.byteLength);
  if (h.length !== 30 || hv.getUint32(0, true) !== LOCAL_SIG) fail(`entry "${entry.name}": bad local header`);
  const begin = entry.headerOffset + 30 + hv.getUint16(26, true) + hv.getUint16(28, true);
  const end = begin + entry.size;
  if (end > src.size) fail(`entry "${entry.name}" runs past the end of the file`);
  return { begin, end };
}

/** A stored entry's bytes (for small entries such as data.pkl). */
export async function readStoredEntry(src: ByteSource, entry: ZipEntry, maxBytes: number): Promise<Uint8Array> {
  if (entry.size > maxBytes) throw new ZipError(src.name, `entry "${entry.name}" is ${entry.size} bytes, more than the ${maxBytes} expected`);
  const { begin, end } = await storedEntryRange(src, entry);
  const bytes = await src.read(begin, end - begin);
  if (bytes.length !== end - begin) throw new ZipError(src.name, `entry "${entry.name}" cut short`);
  return bytes;
}
