// Augmentation against hand computations: an exact mirror, identity at 0°, a 90° turn as a pixel
// permutation, one bilinear pixel worked out on paper, black fill, and seeded reproducibility.

import { describe, expect, it } from 'vitest';
import {
  augmentImage,
  deriveSeed,
  epochOrder,
  flipHorizontal,
  MAX_ROTATION_DEGREES,
  mulberry32,
  rotateImage,
  sampleAugmentation,
} from '../../datasets/augment.js';
import type { RgbImage } from '../../datasets/image.js';
import { seededValues } from '../helpers.js';

/** A w×h image whose channel c, pixel (x, y) holds 100c + w·y + x. */
function ramp(w: number, h: number): RgbImage {
  const data = new Float32Array(3 * w * h);
  for (let c = 0; c < 3; c++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[c * w * h + y * w + x] = 100 * c + w * y + x;
  return { width: w, height: h, data };
}

const at = (img: RgbImage, c: number, x: number, y: number) => img.data[c * img.width * img.height + y * img.width + x];

describe('flip', () => {
  it('mirrors each row exactly, in every channel', () => {
    const img = ramp(5, 3);
    const f = flipHorizontal(img);
    for (let c = 0; c < 3; c++) for (let y = 0; y < 3; y++) for (let x = 0; x < 5; x++) expect(at(f, c, x, y)).toBe(at(img, c, 4 - x, y));
    expect(flipHorizontal(f).data).toEqual(img.data);
  });
});

describe('rotation', () => {
  it('by 0° is the identity (and a copy)', () => {
    const img = ramp(6, 4);
    const r = rotateImage(img, 0);
    expect(r.data).toEqual(img.data);
    expect(r.data).not.toBe(img.data);
  });

  it('by 90° turns a square counter-clockwise: out(x, y) = in(W−1−y, x)', () => {
    const img = ramp(4, 4);
    for (const mode of ['bilinear', 'nearest'] as const) {
      const r = rotateImage(img, 90, mode);
      for (let c = 0; c < 3; c++) for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) expect(at(r, c, x, y)).toBeCloseTo(at(img, c, 3 - y, x), 9);
    }
  });

  it('matches a bilinear sample worked by hand at 7°', () => {
    // 3×3, centre (1.5, 1.5). Output (0, 0): p = (−1, −1);
    // sx = −cos7° + sin7° + 1.5 = 0.6293232, sy = −sin7° − cos7° + 1.5 = 0.3855845 (inside).
    // Pixel-centre coordinates u = 0.1293232, v = −0.1144155: x0 = 0, y0 = −1 (clamped to row 0),
    // so the value is in(0,0) + 0.1293232·(in(1,0) − in(0,0)) = 0.1293232 on the ramp.
    const r = rotateImage(ramp(3, 3), 7);
    expect(at(r, 0, 0, 0)).toBeCloseTo(0.1293232, 6);
    expect(at(r, 1, 0, 0)).toBeCloseTo(100.1293232, 4);
    // The centre pixel maps to itself at any angle.
    expect(at(r, 0, 1, 1)).toBeCloseTo(4, 6);
    // Output (2, 0): p = (1, −1); sx = cos7° + sin7° + 1.5 = 2.6144155, sy = sin7° − cos7° + 1.5 = 0.6293232;
    // u = 2.1144155 (x0 = 2, x1 clamped to 2), v = 0.1293232: in(2,0) + 0.1293232·(in(2,1) − in(2,0)) = 2 + 3·0.1293232.
    expect(at(r, 0, 2, 0)).toBeCloseTo(2 + 3 * 0.1293232, 5);
  });

  it('fills points outside the input with 0', () => {
    // 4×4 at 45°: output (0, 0) samples (2, 2 − 1.5·√2) = (2, −0.12), above the image.
    const img: RgbImage = { width: 4, height: 4, data: new Float32Array(48).fill(1) };
    const r = rotateImage(img, 45);
    expect(at(r, 0, 0, 0)).toBe(0);
    expect(at(r, 2, 3, 3)).toBe(0);
    expect(at(r, 0, 1, 1)).toBe(1);
  });

  it('is undone by the opposite rotation away from the border', () => {
    const img = ramp(9, 9);
    const back = rotateImage(rotateImage(img, 5, 'bilinear'), -5, 'bilinear');
    // Bilinear twice blurs a linear ramp not at all in the interior.
    expect(at(back, 0, 4, 4)).toBeCloseTo(at(img, 0, 4, 4), 4);
  });
});

describe('seeded randomness', () => {
  it('mulberry32 is the reference generator', () => {
    // The widely quoted first output of mulberry32 seeded with 1.
    expect(mulberry32(1)()).toBe(0.6270739405881613);
    // And the test helpers' own copy of the algorithm, written separately, agrees on a long run.
    const r = mulberry32(77);
    const mine = Float32Array.from({ length: 1000 }, () => -1 + 2 * r());
    expect(mine).toEqual(seededValues(1000, 77));
  });

  it('derives distinct, order-sensitive seeds', () => {
    expect(deriveSeed(1, 2)).not.toBe(deriveSeed(2, 1));
    expect(deriveSeed(0, 0, 0)).not.toBe(deriveSeed(0, 0, 1));
    expect(deriveSeed(7, 1, 3, 9)).toBe(deriveSeed(7, 1, 3, 9));
  });

  it('augmentation depends only on (seed, epoch, index), with angles within ±7° and flips near half', () => {
    expect(sampleAugmentation(42, 3, 17)).toEqual(sampleAugmentation(42, 3, 17));
    expect(sampleAugmentation(42, 3, 17)).not.toEqual(sampleAugmentation(42, 4, 17));
    let flips = 0;
    let maxAbs = 0;
    let neg = 0;
    const n = 4000;
    for (let i = 0; i < n; i++) {
      const a = sampleAugmentation(5, 0, i);
      if (a.flip) flips++;
      if (a.angle < 0) neg++;
      maxAbs = Math.max(maxAbs, Math.abs(a.angle));
    }
    expect(maxAbs).toBeLessThanOrEqual(MAX_ROTATION_DEGREES);
    expect(maxAbs).toBeGreaterThan(6.9);
    expect(flips / n).toBeGreaterThan(0.46);
    expect(flips / n).toBeLessThan(0.54);
    expect(neg / n).toBeGreaterThan(0.46);
    expect(neg / n).toBeLessThan(0.54);
  });

  it('epoch orders are permutations, reproducible, and differ between epochs', () => {
    const a = epochOrder(50, 9, 0);
    expect(Array.from(a).sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(epochOrder(50, 9, 0)).toEqual(a);
    expect(epochOrder(50, 9, 1)).not.toEqual(a);
    expect(epochOrder(50, 10, 0)).not.toEqual(a);
  });

  it('augmentImage flips first, then rotates', () => {
    const img = ramp(6, 6);
    const out = augmentImage(img, { flip: true, angle: 3 });
    expect(out.data).toEqual(rotateImage(flipHorizontal(img), 3).data);
    expect(augmentImage(img, { flip: false, angle: 0 }).data).toEqual(img.data);
  });
});
