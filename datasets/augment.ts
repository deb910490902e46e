// Training augmentation, browser-safe and seeded: horizontal flip with p = 0.5, then rotation by a
// uniform angle in [−7°, +7°] (the paper's torchvision RandomHorizontalFlip + RandomRotation(7)).
//
// Seeds. Everything random in the data pipeline comes from mulberry32 streams whose seeds are
// derived, never drawn in sequence, so neither worker timing nor batch size nor a resume changes
// them:
//   augmentation of sample i in epoch e:  mulberry32(deriveSeed(seed, AUGMENT_STREAM, e, i))
//     first draw  u0: flip when u0 < 0.5
//     second draw u1: angle = (2·u1 − 1) · 7 degrees
//   shuffle of epoch e:                   mulberry32(deriveSeed(seed, SHUFFLE_STREAM, e)), Fisher–Yates
// `i` is the sample's index in the split's sample list (not its position in the batch).
//
// Rotation follows PIL's Image.rotate (what RandomRotation calls on the authors' PIL images): the
// centre is (W/2, H/2) in pixel-edge coordinates, a positive angle turns the picture counter-
// clockwise, the output keeps the input size, and points that fall outside the input are filled with
// 0 (black). Bilinear sampling by default; 'nearest' is torchvision's own default interpolation.

import type { RgbImage } from './image.js';

import { mulberry32 } from '../engine/prng.js';

export { mulberry32 };

/** MurmurHash3's 32-bit finalizer: every input bit affects every output bit. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * A 32-bit seed from integer parts (each taken mod 2^32): h = 0x9e3779b9; for each part p,
 * h = fmix32(h ⊕ p) + 0x9e3779b9 (mod 2^32). Order matters, so (1, 2) and (2, 1) differ.
 */
export function deriveSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) h = (fmix32((h ^ (p >>> 0)) >>> 0) + 0x9e3779b9) >>> 0;
  return h;
}

export const AUGMENT_STREAM = 1;
export const SHUFFLE_STREAM = 2;
export const MAX_ROTATION_DEGREES = 7;

export interface Augmentation {
  flip: boolean;
  /** Counter-clockwise, in degrees. */
  angle: number;
}

/** The augmentation of sample `index` in `epoch` (see the derivation at the top of the file). */
export function sampleAugmentation(seed: number, epoch: number, index: number, maxDegrees = MAX_ROTATION_DEGREES): Augmentation {
  const rng = mulberry32(deriveSeed(seed, AUGMENT_STREAM, epoch, index));
  const flip = rng() < 0.5;
  const angle = (2 * rng() - 1) * maxDegrees;
  return { flip, angle };
}

/** The order samples are visited in `epoch`: a seeded Fisher–Yates permutation of 0..n−1. */
export function epochOrder(n: number, seed: number, epoch: number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const rng = mulberry32(deriveSeed(seed, SHUFFLE_STREAM, epoch));
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

/** Mirror left–right, into a new image. */
export function flipHorizontal(img: RgbImage): RgbImage {
  const { width: w, height: h } = img;
  const out = new Float32Array(img.data.length);
  for (let p = 0; p < 3 * h; p++) {
    const row = p * w;
    for (let x = 0; x < w; x++) out[row + x] = img.data[row + w - 1 - x];
  }
  return { width: w, height: h, data: out };
}

export type RotateInterpolation = 'bilinear' | 'nearest';

/**
 * Rotates counter-clockwise by `degrees` about the image centre into a new image of the same size,
 * as PIL's Image.rotate(degrees, resample, expand=False, fillcolor=0): output pixel (x, y) samples
 * the input at c + R·(x + ½ − cx, y + ½ − cy) with R = [[cos θ, −sin θ], [sin θ, cos θ]]; a point
 * outside [0, W) × [0, H) gives 0; inside, bilinear sampling clamps neighbours at the border.
 */
export function rotateImage(img: RgbImage, degrees: number, interpolation: RotateInterpolation = 'bilinear'): RgbImage {
  const { width: w, height: h, data } = img;
  if (degrees === 0) return { width: w, height: h, data: data.slice() };
  const theta = (degrees * Math.PI) / 180;
  const cos = Math.cos(theta);
  const sin = Math.sin(theta);
  const cx = w / 2;
  const cy = h / 2;
  const n = w * h;
  const out = new Float32Array(3 * n);
  for (let y = 0; y < h; y++) {
    const py = y + 0.5 - cy;
    for (let x = 0; x < w; x++) {
      const px = x + 0.5 - cx;
      const sx = cos * px - sin * py + cx;
      const sy = sin * px + cos * py + cy;
      if (sx < 0 || sx >= w || sy < 0 || sy >= h) continue; // fill 0
      const o = y * w + x;
      if (interpolation === 'nearest') {
        const i = Math.floor(sy) * w + Math.floor(sx);
        out[o] = data[i];
        out[n + o] = data[n + i];
        out[2 * n + o] = data[2 * n + i];
        continue;
      }
      const u = sx - 0.5;
      const v = sy - 0.5;
      const x0 = Math.floor(u);
      const y0 = Math.floor(v);
      const dx = u - x0;
      const dy = v - y0;
      const xa = Math.max(0, Math.min(w - 1, x0));
      const xb = Math.max(0, Math.min(w - 1, x0 + 1));
      const ya = Math.max(0, Math.min(h - 1, y0)) * w;
      const yb = Math.max(0, Math.min(h - 1, y0 + 1)) * w;
      for (let c = 0; c < 3; c++) {
        const p = c * n;
        const top = data[p + ya + xa] + (data[p + ya + xb] - data[p + ya + xa]) * dx;
        const bottom = data[p + yb + xa] + (data[p + yb + xb] - data[p + yb + xa]) * dx;
        out[p + o] = top + (bottom - top) * dy;
      }
    }
  }
  return { width: w, height: h, data: out };
}

/** Flip (if drawn), then rotate: torchvision's order in the paper's Compose. Returns a new image. */
export function augmentImage(img: RgbImage, aug: Augmentation, interpolation: RotateInterpolation = 'bilinear'): RgbImage {
  const flipped = aug.flip ? flipHorizontal(img) : img;
  if (aug.angle === 0) return flipped === img ? { width: img.width, height: img.height, data: img.data.slice() } : flipped;
  return rotateImage(flipped, aug.angle, interpolation);
}
