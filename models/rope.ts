// DINOv3's 2-D rotary position embeddings, browser-safe. There is no learned positional grid: each patch
// token's query and key are rotated by angles that depend on its (y, x) centre in [-1, 1], with
// headDim/4 frequencies per axis (theta^(-4k/headDim)); the CLS and register tokens are not rotated. The
// tables are computed for any grid, so 224 and 512 px use the same weights unchanged. As in Hugging
// Face's DINOv3ViTRopePositionEmbedding (and the original RopePositionEmbedding, normalize_coords
// "separate"), in f32.

import type { Tensor } from '../engine/tensor.js';
import { concat } from '../engine/ops/views.js';

/** cos and sin tables [gh·gw, headDim], row-major over the grid (y major). */
export function ropeTables(gh: number, gw: number, headDim: number, theta: number): { cos: Float32Array; sin: Float32Array } {
  if (headDim % 4 !== 0) throw new Error(`RoPE: head width ${headDim} is not a multiple of 4`);
  const f = Math.fround;
  const quarter = headDim / 4;
  const invFreq = Float32Array.from({ length: quarter }, (_, k) => f(1 / f(theta ** f(k * f(4 / headDim)))));
  const twoPi = f(2 * Math.PI);
  const cos = new Float32Array(gh * gw * headDim);
  const sin = new Float32Array(gh * gw * headDim);
  for (let y = 0; y < gh; y++) {
    for (let x = 0; x < gw; x++) {
      const row = (y * gw + x) * headDim;
      // Patch centres, normalized per axis to [0, 1] and shifted to [-1, 1].
      const coords = [f(f(2 * f(f(y + 0.5) / gh)) - 1), f(f(2 * f(f(x + 0.5) / gw)) - 1)];
      for (let axis = 0; axis < 2; axis++) {
        for (let k = 0; k < quarter; k++) {
          const angle = f(f(twoPi * coords[axis]) * invFreq[k]);
          const c = f(Math.cos(angle));
          const s = f(Math.sin(angle));
          // [y freqs, x freqs] fill half the head; the second half repeats them (tile(2)).
          for (const half of [0, headDim / 2]) {
            cos[row + half + axis * quarter + k] = c;
            sin[row + half + axis * quarter + k] = s;
          }
        }
      }
    }
  }
  return { cos, sin };
}

/**
 * Rotates the tokens after the first `prefix` of q or k [B, H, N, dh]: x·cos + rotate_half(x)·sin,
 * with rotate_half(x) = [−x₂, x₁] over the two halves of the head. cos and sin are [N − prefix, dh].
 */
export function applyRope(x: Tensor, cos: Tensor, sin: Tensor, prefix: number): Tensor {
  const n = x.shape[2];
  const dh = x.shape[3];
  const half = dh / 2;
  const patches = x.narrow(2, prefix, n - prefix);
  const rotated = concat([patches.narrow(3, half, half).neg(), patches.narrow(3, 0, half)], 3);
  const out = patches.mul(cos).add(rotated.mul(sin));
  return prefix > 0 ? concat([x.narrow(2, 0, prefix), out], 2) : out;
}
