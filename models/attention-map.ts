// Where the model looks: the last transformer block's attention from the CLS token to every patch,
// averaged over heads, computed with the engine's own ops. The fused attention kernel
// (engine/ops/attention.ts) never materializes its probabilities, so the last block's CLS row is
// recomputed here with matmul and softmax from the same weights: softmax(q_cls · Kᵀ / √d_head).
// This is "last-block CLS attention", not attention rollout (which multiplies every block's maps).
// Browser-safe; the page draws it over the image.

import { noGrad } from '../engine/autograd.js';
import { tidy } from '../engine/scope.js';
import { softmax } from '../engine/ops/softmax.js';
import type { Tensor } from '../engine/tensor.js';
import type { VisionTransformer } from './vit.js';

export const ATTENTION_MAP_METHOD = "last block's CLS-to-patch attention, averaged over heads";

export interface AttentionMap {
  /** Patch grid rows and columns. */
  rows: number;
  cols: number;
  /** [rows · cols] attention of CLS to each patch (mean over heads; sums to ≤ 1 with CLS and registers). */
  grid: Float32Array;
  /** [heads, rows · cols] per head. */
  perHead: Float32Array;
}

/** The last block's CLS attention probabilities over all tokens: [B, heads, N] (a Tensor, for tests). */
export function lastBlockClsAttention(model: VisionTransformer, images: Tensor): Tensor {
  const c = model.config;
  const last = c.depth - 1;
  const x = model.tokens(images, last);
  const [b, n, d] = x.shape;
  const dh = d / c.heads;
  // The same q and k the block computes (norm, projection, and DINOv3's rotary embeddings).
  const { q, k } = model.queryKeyValue(last, x, Math.floor(images.shape[2] / c.patchSize), Math.floor(images.shape[3] / c.patchSize));
  const qCls = q.narrow(2, 0, 1); // [B, H, 1, dh]
  const scores = qCls.matmul(k.transpose(-2, -1)).mul(1 / Math.sqrt(dh)); // [B, H, 1, N]
  return softmax(scores).reshape([b, c.heads, n]);
}

/** The attention map of one preprocessed image (planar [3, S, S], as models/predict.ts makes it). */
export async function attentionMap(model: VisionTransformer, input: Float32Array): Promise<AttentionMap> {
  const c = model.config;
  const s = c.imageSize;
  const grid = Math.floor(s / c.patchSize);
  const patches = grid * grid;
  const probs = noGrad(() => tidy(() => lastBlockClsAttention(model, model.device.tensor(input, [1, 3, s, s]))));
  let all: Float32Array;
  try {
    all = await probs.data();
  } finally {
    probs.dispose();
  }
  const n = all.length / c.heads;
  const first = 1 + c.registers; // patch tokens follow CLS and the registers
  const perHead = new Float32Array(c.heads * patches);
  const mean = new Float32Array(patches);
  for (let hd = 0; hd < c.heads; hd++) {
    for (let p = 0; p < patches; p++) {
      const v = all[hd * n + first + p];
      perHead[hd * patches + p] = v;
      mean[p] += v / c.heads;
    }
  }
  return { rows: grid, cols: grid, grid: mean, perHead };
}

/**
 * The map resized to width × height (bilinear, patch centers at their pixel centers: the model saw
 * the image squared, so each patch covers a W/cols × H/rows rectangle of the original) and stretched
 * to [0, 1] by its own minimum and maximum (a constant map stays 0).
 */
export function upsampleMap(map: AttentionMap, width: number, height: number): Float32Array {
  const out = new Float32Array(width * height);
  const { rows, cols, grid } = map;
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of grid) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const range = hi - lo;
  for (let y = 0; y < height; y++) {
    const gy = Math.min(rows - 1, Math.max(0, ((y + 0.5) * rows) / height - 0.5));
    const y0 = Math.floor(gy);
    const y1 = Math.min(rows - 1, y0 + 1);
    const fy = gy - y0;
    for (let x = 0; x < width; x++) {
      const gx = Math.min(cols - 1, Math.max(0, ((x + 0.5) * cols) / width - 0.5));
      const x0 = Math.floor(gx);
      const x1 = Math.min(cols - 1, x0 + 1);
      const fx = gx - x0;
      const v = (1 - fy) * ((1 - fx) * grid[y0 * cols + x0] + fx * grid[y0 * cols + x1]) + fy * ((1 - fx) * grid[y1 * cols + x0] + fx * grid[y1 * cols + x1]);
      out[y * width + x] = range > 0 ? (v - lo) / range : 0;
    }
  }
  return out;
}
