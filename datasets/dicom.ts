// DICOM radiographs to images, browser-safe: a Part 10 file (the 'DICM' signature at byte 128) parsed
// with dicom-parser, its pixel data decoded (uncompressed little or big endian, JPEG lossless, JPEG-LS,
// JPEG 2000, JPEG baseline; dicom-codecs.ts), then, as the standard's grayscale pipeline has it:
//   stored values   Bits Stored out of Bits Allocated (bits above High Bit masked off), two's
//                   complement when Pixel Representation is 1;
//   modality LUT    value · Rescale Slope + Rescale Intercept;
//   VOI             --dicom-window: 'none' stretches the image's own minimum..maximum to [0, 1] (the
//                   default: what the study's authors did, see README "DICOM"); 'auto' uses the file's
//                   first Window Center/Width with its VOI LUT Function (LINEAR, LINEAR_EXACT, SIGMOID),
//                   and the minimum..maximum stretch when the file has no window; 'C,W' a given window;
//   presentation    MONOCHROME1 inverted (1 − v), so bone is bright in every image.
// Samples are quantized like 16-bit PNGs when Bits Stored > 8 (image-cache.ts), else like 8-bit ones.
// Color and multi-frame images, and other transfer syntaxes, are refused naming the file and the
// transfer syntax UID.

import dicomParser from 'dicom-parser';
import type { DataSet, Element } from 'dicom-parser';
import { VitgpuError } from '../engine/errors.js';
import { COMPRESSED_SYNTAXES, decodeCompressedFrame, DicomCodecsNotLoaded, dicomCodecsLoaded, needsWasmCodec } from './dicom-codecs.js';
import { ImageError, type RgbImage } from './image-error.js';

/** --dicom-window: 'none' (image min..max, the default), 'auto' (the file's window), or a center and width. */
export type DicomWindow = 'auto' | 'none' | { center: number; width: number };
export const DEFAULT_DICOM_WINDOW = 'none';

export const EXPLICIT_LE = '1.2.840.10008.1.2.1';
export const IMPLICIT_LE = '1.2.840.10008.1.2';
export const EXPLICIT_BE = '1.2.840.10008.1.2.2';
const NATIVE = [IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE];

const SYNTAX_NAMES: Record<string, string> = {
  '1.2.840.10008.1.2.1.99': 'Deflated Explicit VR Little Endian',
  '1.2.840.10008.1.2.4.51': 'JPEG Extended (12-bit lossy)',
  '1.2.840.10008.1.2.5': 'RLE Lossless',
  '1.2.840.10008.1.2.4.100': 'MPEG-2',
  '1.2.840.10008.1.2.4.201': 'HTJ2K Lossless',
  '1.2.840.10008.1.2.4.202': 'HTJ2K Lossless RPCL',
  '1.2.840.10008.1.2.4.203': 'HTJ2K',
};

/** Parses the text form of --dicom-window ('auto', 'none' or 'C,W' with W ≥ 1). */
export function parseDicomWindow(text: string | undefined, option = '--dicom-window'): DicomWindow {
  const t = (text ?? DEFAULT_DICOM_WINDOW).trim();
  if (t === 'auto' || t === 'none') return t;
  const m = /^(-?[\d.]+(?:e[-+]?\d+)?)\s*,\s*([\d.]+(?:e[-+]?\d+)?)$/i.exec(t);
  const center = m ? Number(m[1]) : NaN;
  const width = m ? Number(m[2]) : NaN;
  if (!Number.isFinite(center) || !Number.isFinite(width) || width < 1) {
    throw new VitgpuError(`${option} must be auto, none, or CENTER,WIDTH with WIDTH >= 1 (e.g. 2048,4096), got "${text}"`);
  }
  return { center, width };
}

/** The text form (as stored in a run's settings and the cache key). */
export function dicomWindowText(w: DicomWindow): string {
  return typeof w === 'string' ? w : `${w.center},${w.width}`;
}

export function isDicom(b: Uint8Array): boolean {
  return b.length >= 132 && b[128] === 0x44 && b[129] === 0x49 && b[130] === 0x43 && b[131] === 0x4d;
}

export interface DicomHeader {
  width: number;
  height: number;
  transferSyntax: string;
  bitsAllocated: number;
  bitsStored: number;
  highBit: number;
  signed: boolean;
  photometric: string;
  samplesPerPixel: number;
  frames: number;
  slope: number;
  intercept: number;
  /** Window centers and widths in the file (the first is used by 'auto'). */
  windows: { center: number; width: number }[];
  voiFunction: string;
}

interface Parsed {
  header: DicomHeader;
  dataSet: DataSet;
  pixels: Element;
}

function parse(bytes: Uint8Array, name: string): Parsed {
  let syntax = '';
  try {
    syntax = dicomParser.readPart10Header(bytes).string('x00020010')?.replace(/\0/g, '').trim() ?? '';
  } catch (err) {
    throw new ImageError(name, `corrupt DICOM (${errorText(err)})`);
  }
  if (!syntax) throw new ImageError(name, 'corrupt DICOM (no transfer syntax UID in the file meta information)');
  if (!NATIVE.includes(syntax) && !COMPRESSED_SYNTAXES.includes(syntax)) {
    const what = SYNTAX_NAMES[syntax] ? ` (${SYNTAX_NAMES[syntax]})` : '';
    throw new ImageError(name, `unsupported DICOM transfer syntax ${syntax}${what}; vitgpu reads uncompressed, JPEG baseline, JPEG lossless, JPEG-LS and JPEG 2000 images (convert it, e.g. with \`gdcmconv --raw\`)`);
  }
  let dataSet: DataSet;
  try {
    dataSet = dicomParser.parseDicom(bytes);
  } catch (err) {
    const text = errorText(err);
    throw new ImageError(name, `corrupt DICOM (transfer syntax ${syntax}; ${/overrun|end of buffer|past end/i.test(text) ? 'truncated: ' : ''}${text})`);
  }
  const num = (tag: string, fallback?: number): number => {
    const v = dataSet.elements[tag] ? (dataSet.uint16(tag) ?? NaN) : NaN;
    if (Number.isFinite(v)) return v;
    if (fallback !== undefined) return fallback;
    throw new ImageError(name, `corrupt DICOM (transfer syntax ${syntax}): no ${TAG_NAMES[tag] ?? tag}`);
  };
  const decimal = (tag: string, i = 0): number => Number(dataSet.string(tag)?.split('\\')[i]?.trim() ?? NaN);
  const width = num('x00280011');
  const height = num('x00280010');
  const bitsAllocated = num('x00280100');
  const bitsStored = num('x00280101', bitsAllocated);
  const photometric = (dataSet.string('x00280004') ?? 'MONOCHROME2').trim();
  const samplesPerPixel = num('x00280002', 1);
  const frames = Number(dataSet.string('x00280008') ?? '1') || 1;
  const windows: { center: number; width: number }[] = [];
  const count = (dataSet.string('x00281050') ?? '').split('\\').length;
  for (let i = 0; i < count; i++) {
    const center = decimal('x00281050', i);
    const w = decimal('x00281051', i);
    if (Number.isFinite(center) && Number.isFinite(w) && w > 0) windows.push({ center, width: w });
  }
  const slope = decimal('x00281053');
  const intercept = decimal('x00281052');
  const header: DicomHeader = {
    width,
    height,
    transferSyntax: syntax,
    bitsAllocated,
    bitsStored,
    highBit: num('x00280102', bitsStored - 1),
    signed: num('x00280103', 0) === 1,
    photometric,
    samplesPerPixel,
    frames,
    slope: Number.isFinite(slope) && slope !== 0 ? slope : 1,
    intercept: Number.isFinite(intercept) ? intercept : 0,
    windows,
    voiFunction: (dataSet.string('x00281056') ?? 'LINEAR').trim().toUpperCase(),
  };
  const where = `transfer syntax ${syntax}`;
  if (frames > 1) throw new ImageError(name, `multi-frame DICOM (${frames} frames, ${where}) is not supported; vitgpu reads single radiographs`);
  if (samplesPerPixel !== 1 || (photometric !== 'MONOCHROME1' && photometric !== 'MONOCHROME2')) {
    throw new ImageError(name, `${photometric} DICOM with ${samplesPerPixel} samples per pixel (${where}) is not supported; vitgpu reads grayscale (MONOCHROME1/2) radiographs`);
  }
  if (![8, 16, 32].includes(bitsAllocated) || bitsStored < 1 || bitsStored > bitsAllocated || header.highBit < bitsStored - 1 || header.highBit >= bitsAllocated) {
    throw new ImageError(name, `unsupported DICOM pixel layout (${bitsStored} of ${bitsAllocated} bits, high bit ${header.highBit}; ${where})`);
  }
  if (!width || !height) throw new ImageError(name, `corrupt DICOM (${where}): zero rows or columns`);
  const pixels = dataSet.elements.x7fe00010;
  if (!pixels) throw new ImageError(name, `DICOM without pixel data (${where})`);
  const native = NATIVE.includes(syntax);
  if (native && (pixels.length < (width * height * bitsAllocated) / 8 || pixels.dataOffset + pixels.length > bytes.length)) {
    throw new ImageError(name, `corrupt DICOM (${where}; truncated: pixel data holds ${Math.min(pixels.length, bytes.length - pixels.dataOffset)} bytes for ${width} × ${height} × ${bitsAllocated} bits)`);
  }
  if (!native && !(pixels.encapsulatedPixelData && pixels.fragments?.length)) throw new ImageError(name, `corrupt DICOM (${where}): compressed pixel data has no fragments`);
  return { header, dataSet, pixels };
}

const TAG_NAMES: Record<string, string> = { x00280010: 'Rows', x00280011: 'Columns', x00280100: 'Bits Allocated' };

/** dicom-parser throws strings, Errors, or { exception, dataSet } objects. */
function errorText(err: unknown): string {
  if (typeof err === 'string') return err;
  const e = err as { message?: string; exception?: unknown };
  if (e?.exception !== undefined) return errorText(e.exception);
  return e?.message ?? String(err);
}

/** The header of a DICOM file (size, transfer syntax, bit depth, rescale, windows); ImageError when it is not usable. */
export function dicomHeader(bytes: Uint8Array, name: string): DicomHeader {
  return parse(bytes, name).header;
}

/** True when decoding `bytes` needs the WebAssembly codecs and they are not loaded yet. */
export function dicomNeedsCodecs(bytes: Uint8Array): boolean {
  if (!isDicom(bytes) || dicomCodecsLoaded()) return false;
  try {
    return needsWasmCodec(dicomParser.readPart10Header(bytes).string('x00020010')?.replace(/\0/g, '').trim() ?? '');
  } catch {
    return false; // decoding reports the problem
  }
}

/** Modality values (Rescale Slope/Intercept applied) of a single-frame grayscale DICOM, row-major. */
export interface DicomPixels {
  header: DicomHeader;
  values: Float32Array;
  min: number;
  max: number;
}

export function dicomPixels(bytes: Uint8Array, name: string): DicomPixels {
  const { header: h, dataSet, pixels } = parse(bytes, name);
  const n = h.width * h.height;
  const values = new Float32Array(n);
  const storedMask = 2 ** h.bitsStored;
  const signBit = 2 ** (h.bitsStored - 1);
  const toValue = (stored: number): number => {
    let v = stored;
    if (h.signed && v >= signBit) v -= storedMask;
    return v * h.slope + h.intercept;
  };
  if (NATIVE.includes(h.transferSyntax)) {
    const view = new DataView(bytes.buffer, bytes.byteOffset + pixels.dataOffset, pixels.length);
    const little = h.transferSyntax !== EXPLICIT_BE;
    const shift = h.highBit + 1 - h.bitsStored;
    for (let i = 0; i < n; i++) {
      const raw = h.bitsAllocated === 8 ? view.getUint8(i) : h.bitsAllocated === 16 ? view.getUint16(2 * i, little) : view.getUint32(4 * i, little);
      values[i] = toValue(Math.floor(raw / 2 ** shift) % storedMask);
    }
  } else {
    let frame;
    try {
      const data = dicomParser.readEncapsulatedPixelDataFromFragments(dataSet, pixels, 0, pixels.fragments!.length);
      frame = decodeCompressedFrame(h.transferSyntax, new Uint8Array(data.buffer, data.byteOffset, data.length), Math.max(1, h.bitsAllocated / 8));
    } catch (err) {
      if (err instanceof DicomCodecsNotLoaded) throw err;
      throw new ImageError(name, `cannot decode the DICOM pixel data (transfer syntax ${h.transferSyntax}: ${errorText(err)})`);
    }
    if (frame.width !== h.width || frame.height !== h.height || frame.components !== 1) {
      throw new ImageError(name, `corrupt DICOM (transfer syntax ${h.transferSyntax}): the compressed image is ${frame.width} × ${frame.height} × ${frame.components}, the header says ${h.width} × ${h.height} × 1`);
    }
    // Codecs give right-aligned samples (a signed JPEG 2000 already as negative numbers).
    for (let i = 0; i < n; i++) {
      const s = frame.samples[i];
      values[i] = s < 0 ? s * h.slope + h.intercept : toValue(s % storedMask);
    }
  }
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    if (values[i] < min) min = values[i];
    if (values[i] > max) max = values[i];
  }
  return { header: h, values, min, max };
}

/** The VOI transform of one value to [0, 1] (PS3.3 C.11.2.1.2), for a window and VOI LUT Function. */
export function windowValue(x: number, center: number, width: number, fn = 'LINEAR'): number {
  if (fn === 'SIGMOID') return 1 / (1 + Math.exp((-4 * (x - center)) / width));
  if (fn === 'LINEAR_EXACT') {
    if (x <= center - width / 2) return 0;
    if (x > center + width / 2) return 1;
    return (x - center) / width + 0.5;
  }
  if (x <= center - 0.5 - (width - 1) / 2) return 0;
  if (x > center - 0.5 + (width - 1) / 2) return 1;
  return (x - (center - 0.5)) / (width - 1) + 0.5;
}

/** Which window `policy` picks for these pixels: a center, width and function, or null for min..max. */
export function chooseWindow(p: DicomPixels, policy: DicomWindow): { center: number; width: number; fn: string } | null {
  if (policy === 'none') return null;
  if (policy === 'auto') {
    const w = p.header.windows[0];
    return w ? { ...w, fn: p.header.voiFunction } : null;
  }
  return { ...policy, fn: 'LINEAR' };
}

/** Modality values to display values in [0, 1] under `policy`, MONOCHROME1 inverted. */
export function dicomToGray(p: DicomPixels, policy: DicomWindow): Float32Array {
  const w = chooseWindow(p, policy);
  const out = new Float32Array(p.values.length);
  const range = p.max - p.min;
  const invert = p.header.photometric === 'MONOCHROME1';
  for (let i = 0; i < out.length; i++) {
    const v = w ? windowValue(p.values[i], w.center, w.width, w.fn) : range > 0 ? (p.values[i] - p.min) / range : 0;
    out[i] = invert ? 1 - v : v;
  }
  return out;
}

/** A DICOM file as planar RGB in [0, 1] (gray in all three planes), under the VOI `policy`. */
export function decodeDicom(bytes: Uint8Array, name: string, policy: DicomWindow = DEFAULT_DICOM_WINDOW): RgbImage {
  const p = dicomPixels(bytes, name);
  const gray = dicomToGray(p, policy);
  const n = gray.length;
  const data = new Float32Array(3 * n);
  data.set(gray, 0);
  data.set(gray, n);
  data.set(gray, 2 * n);
  return { width: p.header.width, height: p.header.height, data };
}
