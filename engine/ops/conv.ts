// Patch embedding: the ViT's strided convolution (kernel = stride = patch size P) as im2col + matmul.
// With non-overlapping patches, im2col is only a reshape and a permute of the image, so the whole op is
// differentiable through existing view and matmul rules.

import type { Tensor } from '../tensor.js';
import { ShapeError } from '../errors.js';
import { shapeStr } from '../shape.js';
import { linear } from './matmul.js';

/**
 * images [B, C, H, W], weight [D, C, P, P], bias [D] -> tokens [B, (H/P)·(W/P), D], patches in
 * row-major order (as timm's flatten(2).transpose(1, 2)). Rows and columns past the last whole patch
 * are ignored, as by Conv2d with stride P.
 */
export function patchEmbed(images: Tensor, weight: Tensor, bias: Tensor | null, patch: number): Tensor {
  if (images.rank !== 4) throw new ShapeError(`patchEmbed: images must be [B, C, H, W], got ${shapeStr(images.shape)}`);
  const [b, c, h, w] = images.shape;
  if (weight.rank !== 4 || weight.shape[1] !== c || weight.shape[2] !== patch || weight.shape[3] !== patch) {
    throw new ShapeError(`patchEmbed: weight ${shapeStr(weight.shape)} must be [D, ${c}, ${patch}, ${patch}]`);
  }
  const gh = Math.floor(h / patch);
  const gw = Math.floor(w / patch);
  if (gh === 0 || gw === 0) throw new ShapeError(`patchEmbed: image ${h}×${w} is smaller than one ${patch}×${patch} patch`);
  const d = weight.shape[0];
  const cropped = gh * patch === h && gw * patch === w ? images : images.slice([0, 0, 0, 0], [b, c, gh * patch, gw * patch]);
  const cols = cropped
    .reshape([b, c, gh, patch, gw, patch])
    .permute([0, 2, 4, 1, 3, 5]) // [B, gh, gw, C, P, P]
    .reshape([b, gh * gw, c * patch * patch]);
  return linear(cols, weight.reshape([d, c * patch * patch]), bias);
}

/** CPU reference (f64): Conv2d with kernel = stride = P, output as [B, L, D]. */
export function patchEmbedCpu(
  images: ArrayLike<number>, weight: ArrayLike<number>, bias: ArrayLike<number> | null,
  b: number, c: number, h: number, w: number, d: number, patch: number,
): Float64Array {
  const gh = Math.floor(h / patch);
  const gw = Math.floor(w / patch);
  const out = new Float64Array(b * gh * gw * d);
  for (let n = 0; n < b; n++) {
    for (let py = 0; py < gh; py++) {
      for (let px = 0; px < gw; px++) {
        for (let o = 0; o < d; o++) {
          let s = bias ? bias[o] : 0;
          for (let ci = 0; ci < c; ci++) {
            for (let ky = 0; ky < patch; ky++) {
              for (let kx = 0; kx < patch; kx++) {
                s += images[((n * c + ci) * h + py * patch + ky) * w + px * patch + kx] * weight[((o * c + ci) * patch + ky) * patch + kx];
              }
            }
          }
          out[((n * gh + py) * gw + px) * d + o] = s;
        }
      }
    }
  }
  return out;
}
