// Cheap, browser-safe checks of an image file without decoding it: signature, size, and that the file
// is complete (PNG ends with IEND, JPEG with EOI), which catches truncated downloads.

import { ImageError } from './image.js';

export type CheckMode = 'decode' | 'header';

/**
 * 'header' reads the file and checks the signature, the image size and that the file is complete
 * (PNG ends with IEND, JPEG with EOI): cheap, and catches truncated downloads.
 */
export function checkImageHeader(bytes: Uint8Array, name: string): { width: number; height: number } {
  const b = bytes;
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) {
    if (b.length < 33 || String.fromCharCode(b[12], b[13], b[14], b[15]) !== 'IHDR') throw new ImageError(name, 'corrupt PNG (no IHDR chunk)');
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const width = view.getUint32(16);
    const height = view.getUint32(20);
    if (!width || !height) throw new ImageError(name, 'corrupt PNG (zero width or height)');
    const tail = String.fromCharCode(b[b.length - 8], b[b.length - 7], b[b.length - 6], b[b.length - 5]);
    if (tail !== 'IEND') throw new ImageError(name, 'corrupt PNG (truncated: no IEND chunk at the end)');
    return { width, height };
  }
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) {
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
    let end = b.length;
    while (end > 2 && b[end - 1] === 0) end--; // some writers pad after EOI
    if (b[end - 2] !== 0xff || b[end - 1] !== 0xd9) throw new ImageError(name, 'corrupt JPEG (truncated: no end-of-image marker)');
    return size;
  }
  throw new ImageError(name, b.length === 0 ? 'empty file' : 'not a PNG or JPEG image (unrecognized signature)');
}
