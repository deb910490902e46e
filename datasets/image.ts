// Radiograph decoding and preprocessing, browser-safe: PNG (8/16-bit, gray, gray+alpha, RGB, RGBA,
// palette) through fast-png, JPEG through jpeg-js; converted to 3 channels in [0, 1], resized to a
// square with a quality downscale (Lanczos-3 or area), then normalized.

import { decode as decodePng, convertIndexedToRgb } from 'fast-png';
import jpeg from 'jpeg-js';
import { VitgpuError } from '../engine/errors.js';
import { decodeDicom, isDicom, type DicomWindow } from './dicom.js';

import { ImageError, type RgbImage } from './image-error.js';

export { ImageError, type RgbImage };

export type Normalize = 'none' | 'imagenet' | 'half';
export type ResizeFilter = 'lanczos' | 'area';

const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];

function isPng(b: Uint8Array): boolean {
  return b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47;
}

function isJpeg(b: Uint8Array): boolean {
  return b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;
}

/**
 * Decodes PNG, JPEG or DICOM bytes (detected by signature, not by file name) to planar RGB in [0, 1];
 * `dicomWindow` is the VOI policy for DICOM (datasets/dicom.ts).
 */
export function decodeImage(bytes: Uint8Array, name: string, dicomWindow?: DicomWindow): RgbImage {
  if (isPng(bytes)) return decodePngImage(bytes, name);
  if (isJpeg(bytes)) return decodeJpegImage(bytes, name);
  if (isDicom(bytes)) return decodeDicom(bytes, name, dicomWindow);
  throw new ImageError(name, bytes.length === 0 ? 'empty file' : 'not a PNG, JPEG or DICOM image (unrecognized signature)');
}

/**
 * Why a PNG's chunk structure is incomplete, or null: walks the chunk headers (not the data) to IEND.
 * Checked before decoding so that a truncated file gets one message wherever it was cut, instead of
 * whatever error the inflater happens to meet.
 */
function pngTruncation(b: Uint8Array): string | null {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let o = 8;
  while (o + 8 <= b.length) {
    const length = view.getUint32(o);
    const type = String.fromCharCode(b[o + 4], b[o + 5], b[o + 6], b[o + 7]);
    o += 12 + length;
    if (o > b.length) break;
    if (type === 'IEND') return null;
  }
  return 'truncated: the file ends before its IEND chunk';
}

/** Samples packed at 1, 2 or 4 bits (rows padded to whole bytes) unpacked to one value per byte. */
function unpackBits(packed: ArrayLike<number>, width: number, height: number, channels: number, depth: number): Uint8Array {
  const perRow = width * channels;
  const rowBytes = Math.ceil((perRow * depth) / 8);
  const out = new Uint8Array(perRow * height);
  const mask = (1 << depth) - 1;
  for (let y = 0; y < height; y++) {
    for (let i = 0; i < perRow; i++) {
      const bit = i * depth;
      out[y * perRow + i] = (packed[y * rowBytes + (bit >> 3)] >> (8 - depth - (bit & 7))) & mask;
    }
  }
  return out;
}

function decodePngImage(bytes: Uint8Array, name: string): RgbImage {
  const truncated = pngTruncation(bytes);
  if (truncated) throw new ImageError(name, `corrupt PNG (${truncated})`);
  let png;
  try {
    png = decodePng(bytes);
  } catch {
    // The inflater's own messages vary with where the damage is (and some are engine errors such as
    // "Offset is outside the bounds of the DataView"): one stable message instead.
    throw new ImageError(name, 'corrupt PNG (the image data cannot be decoded)');
  }
  let { data, channels } = png;
  const { width, height } = png;
  let max = png.depth === 16 ? 65535 : 255;
  if (png.palette) {
    data = convertIndexedToRgb(png);
    channels = data.length / (width * height);
    max = 255;
  } else if (png.depth < 8) {
    // fast-png returns 1-, 2- and 4-bit grayscale still packed.
    data = unpackBits(data, width, height, channels, png.depth);
    max = 2 ** png.depth - 1;
  }
  if (!width || !height || data.length < width * height * channels) throw new ImageError(name, 'PNG has no pixel data');
  return toPlanar(data, width, height, channels, max);
}

function decodeJpegImage(bytes: Uint8Array, name: string): RgbImage {
  let img;
  try {
    img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 1024, maxResolutionInMP: 200 });
  } catch (err) {
    throw new ImageError(name, `corrupt JPEG (${(err as Error).message})`);
  }
  const channels = img.data.length / (img.width * img.height);
  if (!img.width || !img.height || !Number.isInteger(channels)) throw new ImageError(name, 'JPEG has no pixel data');
  return toPlanar(img.data, img.width, img.height, channels, 255);
}

/** Interleaved gray / gray+alpha / RGB / RGBA samples to planar RGB in [0, 1] (alpha dropped). */
function toPlanar(src: ArrayLike<number>, width: number, height: number, channels: number, max: number): RgbImage {
  const n = width * height;
  const out = new Float32Array(3 * n);
  const inv = 1 / max;
  for (let i = 0; i < n; i++) {
    const o = i * channels;
    if (channels <= 2) {
      const v = src[o] * inv;
      out[i] = v;
      out[n + i] = v;
      out[2 * n + i] = v;
    } else {
      out[i] = src[o] * inv;
      out[n + i] = src[o + 1] * inv;
      out[2 * n + i] = src[o + 2] * inv;
    }
  }
  return { width, height, data: out };
}

function lanczos3(x: number): number {
  if (x === 0) return 1;
  if (x <= -3 || x >= 3) return 0;
  const px = Math.PI * x;
  return (3 * Math.sin(px) * Math.sin(px / 3)) / (px * px);
}

function box(x: number): number {
  return x > -0.5 && x <= 0.5 ? 1 : 0;
}

/** Resampling weights for one axis (PIL's antialiased resampling: support widens when downscaling). */
function axisWeights(inSize: number, outSize: number, filter: ResizeFilter): { starts: Int32Array; counts: Int32Array; weights: Float32Array; taps: number } {
  const scale = inSize / outSize;
  const fscale = Math.max(scale, 1);
  const support = (filter === 'lanczos' ? 3 : 0.5) * fscale;
  const taps = Math.ceil(support) * 2 + 1;
  const kernel = filter === 'lanczos' ? lanczos3 : box;
  const starts = new Int32Array(outSize);
  const counts = new Int32Array(outSize);
  const weights = new Float32Array(outSize * taps);
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const lo = Math.max(0, Math.floor(center - support + 0.5));
    const hi = Math.min(inSize, Math.floor(center + support + 0.5));
    let total = 0;
    for (let i = lo; i < hi; i++) {
      const w = kernel((i - center + 0.5) / fscale);
      weights[o * taps + (i - lo)] = w;
      total += w;
    }
    if (total !== 0) for (let i = 0; i < hi - lo; i++) weights[o * taps + i] /= total;
    starts[o] = lo;
    counts[o] = hi - lo;
  }
  return { starts, counts, weights, taps };
}

/** Resizes to outW×outH (aspect not kept: radiographs are squared, as in the paper's offline resize). */
export function resizeImage(img: RgbImage, outW: number, outH: number, filter: ResizeFilter = 'lanczos'): RgbImage {
  if (img.width === outW && img.height === outH) return img;
  const { width: w, height: h } = img;
  const xw = axisWeights(w, outW, filter);
  const yw = axisWeights(h, outH, filter);
  const tmp = new Float32Array(3 * h * outW); // horizontal pass
  const out = new Float32Array(3 * outH * outW);
  for (let c = 0; c < 3; c++) {
    const plane = c * w * h;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < outW; x++) {
        let s = 0;
        const st = xw.starts[x];
        for (let k = 0; k < xw.counts[x]; k++) s += img.data[plane + y * w + st + k] * xw.weights[x * xw.taps + k];
        tmp[c * h * outW + y * outW + x] = s;
      }
    }
    for (let y = 0; y < outH; y++) {
      const st = yw.starts[y];
      for (let x = 0; x < outW; x++) {
        let s = 0;
        for (let k = 0; k < yw.counts[y]; k++) s += tmp[c * h * outW + (st + k) * outW + x] * yw.weights[y * yw.taps + k];
        // Lanczos overshoots at edges; keep pixels in range.
        out[c * outH * outW + y * outW + x] = Math.min(1, Math.max(0, s));
      }
    }
  }
  return { width: outW, height: outH, data: out };
}

/** In place: 'none' keeps [0, 1] (as in the paper), 'imagenet' uses its mean/std, 'half' maps to [-1, 1]. */
export function normalizeImage(img: RgbImage, mode: Normalize): RgbImage {
  if (mode === 'none') return img;
  const n = img.width * img.height;
  for (let c = 0; c < 3; c++) {
    const mean = mode === 'imagenet' ? IMAGENET_MEAN[c] : 0.5;
    const std = mode === 'imagenet' ? IMAGENET_STD[c] : 0.5;
    for (let i = c * n; i < (c + 1) * n; i++) img.data[i] = (img.data[i] - mean) / std;
  }
  return img;
}

export function checkNormalize(v: string): Normalize {
  if (v === 'none' || v === 'imagenet' || v === 'half') return v;
  throw new VitgpuError(`--normalize must be none, imagenet or half, got "${v}"`);
}
