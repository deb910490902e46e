// DICOM input against pydicom: each fixture in test/fixtures/dicom (scripts/make-dicom-fixtures.py)
// comes with a 16-bit PNG of the pixels pydicom's own modality and VOI transforms give; vitgpu's
// decoding of the DICOM must equal the PNG's up to its 16-bit rounding. Compressed copies (JPEG
// lossless, JPEG-LS, JPEG 2000, big endian) hold the same pixels as the uncompressed file. Refused
// files (RLE, multi-frame) name the file and the transfer syntax UID.

import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeDicom, dicomHeader, dicomNeedsCodecs, parseDicomWindow, windowValue } from '../../datasets/dicom.js';
import { DicomCodecsNotLoaded, loadDicomCodecs } from '../../datasets/dicom-codecs.js';
import { decodeImage, ImageError } from '../../datasets/image.js';
import { sourceBits } from '../../datasets/image-cache.js';
import { cacheFile, loadResizedImage } from '../../datasets/image-cache-node.js';
import { checkImageHeader, checkPixelLimit, imageDimensions } from '../../datasets/image-header.js';
import { ImagePool } from '../../datasets/image-pool-node.js';
import { squareImage } from '../../datasets/preprocess.js';

const DIR = fileURLToPath(new URL('../fixtures/dicom/', import.meta.url));
const read = (name: string) => new Uint8Array(readFileSync(join(DIR, name)));
const tmp = mkdtempSync(join(tmpdir(), 'vitgpu-dicom-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Largest |a − b| over the first plane (the images are gray). */
function maxDiff(a: Float32Array, b: Float32Array, n: number): number {
  let m = 0;
  for (let i = 0; i < n; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

// The PNG holds round(v · 65535): half a step, plus float32 rounding.
const PNG16_STEP = 0.5 / 65535 + 1e-6;

describe('DICOM decoding against pydicom', () => {
  for (const name of ['mono2-12bit', 'mono1-12bit', 'rescaled-signed']) {
    it(`${name}: --dicom-window none (the default) and auto equal pydicom's pixels`, () => {
      const dcm = read(`${name}.dcm`);
      const png = decodeImage(read(`${name}.png`), `${name}.png`);
      const img = decodeDicom(dcm, `${name}.dcm`);
      expect([img.width, img.height]).toEqual([png.width, png.height]);
      expect(maxDiff(img.data, png.data, img.width * img.height)).toBeLessThanOrEqual(PNG16_STEP);
      // Through decodeImage (signature dispatch) the default is the same.
      expect(decodeImage(dcm, name).data).toEqual(img.data);
      const windowed = decodeDicom(dcm, `${name}.dcm`, 'auto');
      const pngWindow = decodeImage(read(`${name}-window.png`), `${name}-window.png`);
      expect(maxDiff(windowed.data, pngWindow.data, img.width * img.height)).toBeLessThanOrEqual(PNG16_STEP);
      // Not a trivial image: a range of gray levels, and the window changes them.
      expect(Math.max(...img.data) - Math.min(...img.data)).toBeGreaterThan(0.9);
      expect(maxDiff(windowed.data, img.data, img.width * img.height)).toBeGreaterThan(0.05);
    });
  }

  it('reads the header: size, 12 of 16 bits, rescale, windows, photometric', () => {
    const h = dicomHeader(read('rescaled-signed.dcm'), 'rescaled-signed.dcm');
    expect(h).toMatchObject({ width: 48, height: 64, bitsAllocated: 16, bitsStored: 12, signed: true, slope: 2, intercept: -1024, photometric: 'MONOCHROME2', transferSyntax: '1.2.840.10008.1.2' });
    expect(h.windows[0]).toEqual({ center: -900, width: 2600 });
    expect(dicomHeader(read('mono1-12bit.dcm'), 'x').photometric).toBe('MONOCHROME1');
    expect(imageDimensions(read('mono2-12bit.dcm'), 'x')).toEqual({ width: 48, height: 64 });
    expect(checkImageHeader(read('mono2-12bit.dcm'), 'x')).toEqual({ width: 48, height: 64 });
    // Bits Stored 12 > 8: quantized like a 16-bit PNG.
    expect(sourceBits(read('mono2-12bit.dcm'))).toBe(16);
  });

  it('a given window C,W maps values as the standard\'s LINEAR function does', () => {
    const p = decodeDicom(read('mono2-12bit.dcm'), 'x', parseDicomWindow('1800,2400'));
    const auto = decodeDicom(read('mono2-12bit.dcm'), 'x', 'auto'); // the file's window is 1800, 2400
    expect(p.data).toEqual(auto.data);
    expect(windowValue(1800 - 0.5, 1800, 2400)).toBeCloseTo(0.5, 12);
    expect(windowValue(0, 1800, 2400)).toBe(0);
    expect(windowValue(4000, 1800, 2400)).toBe(1);
    expect(() => parseDicomWindow('1800')).toThrow(/--dicom-window must be auto, none, or CENTER,WIDTH/);
    expect(() => parseDicomWindow('10,0')).toThrow(/WIDTH >= 1/);
    expect(parseDicomWindow(undefined)).toBe('none');
  });

  it('compressed copies decode to the same pixels once the WebAssembly codecs are loaded', async () => {
    const reference = decodeImage(read('mono2-12bit.png'), 'png');
    const jpegls = read('mono2-12bit-jpegls.dcm');
    expect(dicomNeedsCodecs(jpegls)).toBe(true);
    expect(() => decodeDicom(jpegls, 'x')).toThrow(DicomCodecsNotLoaded);
    await loadDicomCodecs();
    expect(dicomNeedsCodecs(jpegls)).toBe(false);
    for (const name of ['mono2-12bit-jpeg-lossless', 'mono2-12bit-jpegls', 'mono2-12bit-j2k', 'mono2-12bit-big-endian']) {
      const img = decodeDicom(read(`${name}.dcm`), name);
      expect(maxDiff(img.data, reference.data, 48 * 64), name).toBeLessThanOrEqual(PNG16_STEP);
      expect(img.data, name).toEqual(decodeDicom(read('mono2-12bit.dcm'), 'u').data);
    }
  });

  it('refuses other transfer syntaxes and multi-frame images, naming the file and the transfer syntax UID', () => {
    expect(() => decodeImage(read('unsupported-rle.dcm'), 'scan/rle.dcm')).toThrow(ImageError);
    expect(() => decodeImage(read('unsupported-rle.dcm'), 'scan/rle.dcm')).toThrow(/^scan\/rle\.dcm: unsupported DICOM transfer syntax 1\.2\.840\.10008\.1\.2\.5 \(RLE Lossless\)/);
    expect(() => checkImageHeader(read('unsupported-rle.dcm'), 'rle.dcm')).toThrow(/rle\.dcm: .*1\.2\.840\.10008\.1\.2\.5/);
    expect(() => decodeImage(read('multi-frame.dcm'), 'mf.dcm')).toThrow(/^mf\.dcm: multi-frame DICOM \(2 frames, transfer syntax 1\.2\.840\.10008\.1\.2\.1\)/);
    const whole = read('mono2-12bit.dcm');
    expect(() => checkImageHeader(whole.subarray(0, whole.length - 100), 'cut.dcm')).toThrow(/cut\.dcm: corrupt DICOM .*truncated/);
    expect(() => checkPixelLimit(whole, 'big.dcm', 1000)).toThrow(/big\.dcm: 48 × 64 pixels is above the limit of 1000/);
  });
});

describe('DICOM through the preprocessing, the cache and the image workers', () => {
  it('a DICOM and a 16-bit PNG of the same pixels give the same model input', () => {
    const a = squareImage(read('mono2-12bit.dcm'), 'a.dcm', 32);
    const b = squareImage(read('mono2-12bit.png'), 'b.png', 32);
    expect(maxDiff(a.data, b.data, 32 * 32)).toBeLessThanOrEqual(1 / 65535 + 1e-7);
  });

  it('the window policy is part of the cache key (the default adds nothing to the old key)', () => {
    const key = (w?: Parameters<typeof cacheFile>[6]) => cacheFile('/c', '/a.dcm', 10, 1, 32, 'lanczos', w);
    expect(key()).toBe(key('none'));
    expect(new Set([key(), key('auto'), key({ center: 1, width: 2 }), key({ center: 1, width: 3 })]).size).toBe(4);
    const file = join(tmp, 'w.dcm');
    copyFileSync(join(DIR, 'mono2-12bit.dcm'), file);
    const cache = join(tmp, 'cache');
    expect(loadResizedImage(file, 16, 'lanczos', cache).cached).toBe(false);
    expect(loadResizedImage(file, 16, 'lanczos', cache).cached).toBe(true);
    const auto = loadResizedImage(file, 16, 'lanczos', cache, undefined, 'auto');
    expect(auto.cached).toBe(false);
    expect(maxDiff(auto.image.data, loadResizedImage(file, 16, 'lanczos', cache).image.data, 256)).toBeGreaterThan(0.01);
  });

  for (const workers of [0, 1]) {
    it(`image jobs decode compressed DICOM (${workers ? 'in a worker thread' : 'on the main thread'}), loading the codecs on demand`, async () => {
      const pool = new ImagePool({ workers, onWarning: () => {} });
      try {
        const job = (name: string, dicomWindow?: string) => pool.run({
          kind: 'load', path: join(DIR, name), cache: { dir: null, size: 16, filter: 'lanczos', dicomWindow }, aug: null, interpolation: 'bilinear', normalize: 'none',
        });
        const [j2k, ls, raw, autoLs] = await Promise.all([job('mono2-12bit-j2k.dcm'), job('mono2-12bit-jpegls.dcm'), job('mono2-12bit.dcm'), job('mono2-12bit-jpegls.dcm', 'auto')]);
        for (const r of [j2k, ls, raw, autoLs]) expect(r.ok, JSON.stringify(r)).toBe(true);
        const data = (r: typeof j2k) => (r as { data: Float32Array }).data;
        expect(data(j2k)).toEqual(data(raw));
        expect(data(ls)).toEqual(data(raw));
        expect(maxDiff(data(autoLs), data(raw), 256)).toBeGreaterThan(0.01);
        const bad = await pool.run({ kind: 'check', path: join(DIR, 'unsupported-rle.dcm'), mode: 'decode', cache: null });
        expect(bad).toMatchObject({ ok: false });
        expect((bad as { problem: string }).problem).toMatch(/1\.2\.840\.10008\.1\.2\.5/);
      } finally {
        await pool.close();
      }
    });
  }
});
