// PNG decoding beyond 8 and 16 bits (1-, 2- and 4-bit grayscale, palettes) and stable messages for
// damaged files. The PNGs are written here by a minimal independent encoder (filter 0 rows, zlib),
// so the expected pixels are known exactly.

import { crc32, deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodeImage } from '../../datasets/image.js';

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

/** A PNG of `rows` (sample values per row) at `depth` bits, color type 0 (gray) or 3 (palette). */
function png(rows: number[][], depth: number, colorType: 0 | 3, palette?: number[][]): Buffer {
  const width = rows[0].length;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(rows.length, 4);
  ihdr[8] = depth;
  ihdr[9] = colorType;
  const raw: number[] = [];
  for (const row of rows) {
    raw.push(0); // filter: none
    let acc = 0;
    let bits = 0;
    for (const v of row) {
      acc = (acc << depth) | v;
      bits += depth;
      if (bits === 8) (raw.push(acc), (acc = 0), (bits = 0));
    }
    if (bits) raw.push(acc << (8 - bits));
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    ...(palette ? [chunk('PLTE', Uint8Array.from(palette.flat()))] : []),
    chunk('IDAT', deflateSync(Uint8Array.from(raw))),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

/** A 5×3 grid of values in [0, max], with rows whose bits do not end on a byte boundary. */
function grid(max: number): number[][] {
  return [0, 1, 2].map((y) => [0, 1, 2, 3, 4].map((x) => (x * 3 + y * 7) % (max + 1)));
}

describe('PNG decoding', () => {
  for (const depth of [1, 2, 4]) {
    it(`decodes ${depth}-bit grayscale to value / ${2 ** depth - 1} in every channel`, () => {
      const max = 2 ** depth - 1;
      const rows = grid(max);
      const img = decodeImage(png(rows, depth, 0), `g${depth}.png`);
      expect([img.width, img.height]).toEqual([5, 3]);
      const expected = rows.flat().map((v) => v / max);
      for (let c = 0; c < 3; c++) expect(Array.from(img.data.subarray(c * 15, (c + 1) * 15))).toEqual(expected.map((v) => Math.fround(v)));
    });
  }

  it('decodes a 4-bit palette image to its palette colors', () => {
    const palette = Array.from({ length: 16 }, (_, i) => [(i * 37) % 256, (i * 91) % 256, (i * 13) % 256]);
    const rows = grid(15);
    const img = decodeImage(png(rows, 4, 3, palette), 'p4.png');
    const idx = rows.flat();
    for (let c = 0; c < 3; c++) {
      expect(Array.from(img.data.subarray(c * 15, (c + 1) * 15))).toEqual(idx.map((i) => Math.fround(palette[i][c] / 255)));
    }
  });

  it('a truncated PNG gets one message wherever it is cut, naming the file', () => {
    const rows = Array.from({ length: 40 }, (_, y) => Array.from({ length: 40 }, (_, x) => (x * y) % 256));
    const whole = png(rows, 8, 0);
    const messages = new Set<string>();
    for (let cut = 20; cut < whole.length; cut += 7) {
      expect(() => decodeImage(whole.subarray(0, cut), 'scan.png')).toThrow();
      try {
        decodeImage(whole.subarray(0, cut), 'scan.png');
      } catch (err) {
        messages.add((err as Error).message);
      }
    }
    expect([...messages]).toEqual(['scan.png: corrupt PNG (truncated: the file ends before its IEND chunk)']);
  });

  it('damaged image data (not truncated) gets a stable message too', () => {
    const rows = Array.from({ length: 20 }, (_, y) => Array.from({ length: 20 }, (_, x) => (x + y) % 256));
    const bytes = Buffer.from(png(rows, 8, 0));
    const idat = bytes.indexOf('IDAT', 0, 'latin1');
    bytes.fill(0xff, idat + 4, idat + 12); // the zlib stream header and first block
    expect(() => decodeImage(bytes, 'bad.png')).toThrow(/^bad\.png: corrupt PNG \(the image data cannot be decoded\)$/);
  });
});
