// Cheap, browser-safe checks of an image file without decoding it: its signature and size (so that an
// image claiming 12000 × 12000 pixels is refused before gigabytes are allocated for it), and that the
// file is complete (PNG ends with IEND, JPEG with EOI), which catches truncated downloads.

import { ImageError } from './image.js';
import { dicomHeader, isDicom } from './dicom.js';

/** Images above this many pixels are refused before decoding unless --max-pixels says otherwise (50 MP). */
export const DEFAULT_MAX_PIXELS = 50_000_000;

function isPng(b: Uint8Array): boolean {
  return b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47;
}

function isJpeg(b: Uint8Array): boolean {
  return b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;
}

/** Width and height from a PNG's IHDR, a JPEG's frame header or a DICOM's Rows/Columns; throws ImageError when none is there. */
export function imageDimensions(b: Uint8Array, name: string): { width: number; height: number } {
  if (isDicom(b)) {
    const { width, height } = dicomHeader(b, name);
    return { width, height };
  }
  if (isPng(b)) {
    if (b.length < 33 || String.fromCharCode(b[12], b[13], b[14], b[15]) !== 'IHDR') throw new ImageError(name, 'corrupt PNG (no IHDR chunk)');
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const width = view.getUint32(16);
    const height = view.getUint32(20);
    if (!width || !height) throw new ImageError(name, 'corrupt PNG (zero width or height)');
    return { width, height };
  }
  if (isJpeg(b)) {
    // Walk the marker segments to the first start-of-frame for the size.
    let i = 2;
    let size: { width: number; height: number } | null = null;
    while (i + 9 < b.length && !size) {
      if (b[i] !== 0xff) throw new ImageError(name, 'corrupt JPEG (bad marker)');
      const marker = b[i + 1];
      const len = (b[i + 2] << 8) | b[i + 3];
      const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
      if (isSof) size = { height: (b[i + 5] << 8) | b[i + 6], width: (b[i + 7] << 8) | b[i + 8] };
      i += 2 + len;
    }
    if (!size || !size.width || !size.height) throw new ImageError(name, 'corrupt JPEG (no frame header)');
    return size;
  }
  throw new ImageError(name, b.length === 0 ? 'empty file' : 'not a PNG, JPEG or DICOM image (unrecognized signature)');
}

/** Refuses an image whose header claims more than `maxPixels` pixels, before anything is decoded. */
export function checkPixelLimit(b: Uint8Array, name: string, maxPixels = DEFAULT_MAX_PIXELS): void {
  const { width, height } = imageDimensions(b, name);
  if (width * height > maxPixels) {
    throw new ImageError(name, `${width} × ${height} pixels is above the limit of ${maxPixels} (--max-pixels N to allow larger images)`);
  }
}

/**
 * The 'header' check of the pre-flight: signature, size, and that the file is complete (PNG ends with
 * IEND, JPEG with EOI, DICOM pixel data as long as its header says and a transfer syntax vitgpu
 * decodes): cheap, and catches truncated downloads.
 */
export function checkImageHeader(b: Uint8Array, name: string): { width: number; height: number } {
  const size = imageDimensions(b, name);
  if (isDicom(b)) return size; // dicomHeader checked the syntax, frames and pixel data length
  if (isPng(b)) {
    const tail = String.fromCharCode(b[b.length - 8], b[b.length - 7], b[b.length - 6], b[b.length - 5]);
    if (tail !== 'IEND') throw new ImageError(name, 'corrupt PNG (truncated: no IEND chunk at the end)');
    return size;
  }
  let end = b.length;
  while (end > 2 && b[end - 1] === 0) end--; // some writers pad after EOI
  if (b[end - 2] !== 0xff || b[end - 1] !== 0xd9) throw new ImageError(name, 'corrupt JPEG (truncated: no end-of-image marker)');
  return size;
}
