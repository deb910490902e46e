// The resized-image cache format, browser-safe (the files themselves are read and written by
// image-cache-node.ts). One entry is an image already squared to the model's size and quantized:
//   0  'VGC1'   4  width u32   8  height u32   12  channels u8 (1 gray, 3 RGB)   13  bits u8 (8, 16)
//   14 reserved u16 (0)   16  planar samples, u8 or u16, value = round(v · (2^bits − 1)), v in [0, 1]
// 8 bits for 8-bit sources (JPEG, 8-bit PNG, DICOM with Bits Stored <= 8), 16 for 16-bit PNG and deeper DICOM; one channel when R = G = B (every
// radiograph), so a 224² entry is 50 KB (8-bit) or 100 KB (16-bit). Every path from image bytes to the
// model quantizes this way (quantizeImage), whether or not a cache is used, so one image gives one
// answer: a cache hit, a miss, a disabled cache, `predict` and the browser page see the same pixels.

import type { RgbImage } from './image.js';
import { dicomHeader, isDicom } from './dicom.js';

export const CACHE_VERSION = 1;
const CACHE_MAGIC = [0x56, 0x47, 0x43, 0x31]; // 'VGC1'
const CACHE_HEADER_BYTES = 16;

function isGray(img: RgbImage): boolean {
  const n = img.width * img.height;
  const d = img.data;
  for (let i = 0; i < n; i++) if (d[i] !== d[n + i] || d[i] !== d[2 * n + i]) return false;
  return true;
}

/** 16 for a 16-bit PNG or a DICOM with Bits Stored > 8, else 8 (JPEG is always 8-bit). */
export function sourceBits(bytes: Uint8Array, name = 'image'): 8 | 16 {
  if (isDicom(bytes)) return dicomHeader(bytes, name).bitsStored > 8 ? 16 : 8;
  const png = bytes.length > 24 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[12] === 0x49 && bytes[13] === 0x48; // IHDR first
  return png && bytes[24] === 16 ? 16 : 8;
}

/** Quantizes to the cache format (see the top of the file). */
export function encodeCacheEntry(img: RgbImage, bits: 8 | 16): Uint8Array {
  const channels = isGray(img) ? 1 : 3;
  const count = channels * img.width * img.height;
  const bytesPer = bits / 8;
  const out = new Uint8Array(CACHE_HEADER_BYTES + count * bytesPer);
  const view = new DataView(out.buffer);
  out.set(CACHE_MAGIC, 0);
  view.setUint32(4, img.width, true);
  view.setUint32(8, img.height, true);
  out[12] = channels;
  out[13] = bits;
  const max = bits === 16 ? 65535 : 255;
  for (let i = 0; i < count; i++) {
    const q = Math.round(Math.min(1, Math.max(0, img.data[i])) * max);
    if (bits === 8) out[CACHE_HEADER_BYTES + i] = q;
    else {
      out[CACHE_HEADER_BYTES + 2 * i] = q & 0xff;
      out[CACHE_HEADER_BYTES + 2 * i + 1] = q >>> 8;
    }
  }
  return out;
}

/** Reads a cache entry back to planar RGB; null when the bytes are not a complete entry. */
export function decodeCacheEntry(bytes: Uint8Array): RgbImage | null {
  if (bytes.length < CACHE_HEADER_BYTES || CACHE_MAGIC.some((m, i) => bytes[i] !== m)) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const width = view.getUint32(4, true);
  const height = view.getUint32(8, true);
  const channels = bytes[12];
  const bits = bytes[13];
  if ((channels !== 1 && channels !== 3) || (bits !== 8 && bits !== 16)) return null;
  const n = width * height;
  if (bytes.length !== CACHE_HEADER_BYTES + channels * n * (bits / 8)) return null;
  const data = new Float32Array(3 * n);
  const inv = 1 / (bits === 16 ? 65535 : 255);
  for (let i = 0; i < channels * n; i++) {
    const q = bits === 8 ? bytes[CACHE_HEADER_BYTES + i] : bytes[CACHE_HEADER_BYTES + 2 * i] | (bytes[CACHE_HEADER_BYTES + 2 * i + 1] << 8);
    data[i] = q * inv;
  }
  if (channels === 1) {
    data.copyWithin(n, 0, n);
    data.copyWithin(2 * n, 0, n);
  }
  return { width, height, data };
}

/** The image as the cache stores it and reads it back: each sample rounded to `bits`. */
export function quantizeImage(img: RgbImage, bits: 8 | 16): RgbImage {
  return decodeCacheEntry(encodeCacheEntry(img, bits))!;
}
