// AdamW (Loshchilov & Hutter; PyTorch's torch.optim.AdamW): decoupled weight decay, bias correction.
//   g ← g · clip                      (clip: global-norm scale, read from a GPU scalar)
//   p ← p − lr·wd·p
//   m ← β1·m + (1−β1)·g ;  v ← β2·v + (1−β2)·g²
//   p ← p − lr · (m / (1−β1^t)) / (sqrt(v / (1−β2^t)) + eps)
// One kernel updates a parameter, its two moment buffers and reads its gradient in a single pass.

import type { Tensor } from '../engine/tensor.js';
import { Params, grid1d, launch, pointwiseKernel, type Kernel } from './wgsl.js';

const WG = 256;

const BODY = (t: string) => `let lr = pf(3u); let b1 = pf(4u); let b2 = pf(5u); let eps = pf(6u); let wd = pf(7u);
  let grad = g[pu(2u) + i] * clip[0];
  let pi = pu(1u) + i;
  var w = p[pi];
  w = w - lr * wd * w;
  let mi = b1 * m[i] + (1.0 - b1) * grad;
  let vi = b2 * v[i] + (1.0 - b2) * grad * grad;
  m[i] = mi;
  v[i] = vi;
  p[pi] = w - lr * (mi / pf(8u)) / (sqrt(vi / pf(9u)) + ${t}(eps));`;

// Params: [n, pOffset, gOffset, lr, beta1, beta2, eps, wd, bc1, bc2]
export function adamwKernel(): Kernel {
  return pointwiseKernel({
    key: 'adamw',
    name: 'adamw',
    comment: 'AdamW step',
    paramWords: 10,
    buffers: { p: 'read_write', m: 'read_write', v: 'read_write', g: 'read', clip: 'read' },
    wg: WG,
    body: BODY('f32'),
  });
}

/**
 * The same step on vec4s: n and the offsets in vec4s. On lavapipe a vec4 load or store costs about
 * what a scalar one does, so this moves 3–4× the bytes per second (kernels/elementwise.ts,
 * elementwiseVec4Kernel). Used when the parameter and its gradient start at multiples of 4 elements
 * and the size is one.
 */
export function adamwVec4Kernel(): Kernel {
  return pointwiseKernel({
    key: 'adamw:v4',
    name: 'adamw_v4',
    comment: 'AdamW step, one vec4 per invocation',
    paramWords: 10,
    buffers: { p: ['read_write', 'vec4<f32>'], m: ['read_write', 'vec4<f32>'], v: ['read_write', 'vec4<f32>'], g: ['read', 'vec4<f32>'], clip: 'read' },
    wg: WG,
    body: BODY('vec4<f32>'),
  });
}

export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export function adamwParams(n: number, pOffset: number, gOffset: number, h: AdamWHyper, step: number): Uint32Array {
  return new Params()
    .u32(n, pOffset, gOffset)
    .f32(h.lr, h.beta1, h.beta2, h.eps, h.weightDecay, 1 - h.beta1 ** step, 1 - h.beta2 ** step)
    .toArray();
}

export function adamwWorkgroups(n: number): [number, number] {
  return grid1d(n, WG);
}

/**
 * One AdamW step of the contiguous parameter `p` (in place) with its moments `m`, `v` (contiguous, from
 * element 0) and gradient `g` (contiguous), the gradient scaled by the GPU scalar `clip`.
 */
export function adamwStep(p: Tensor, m: Tensor, v: Tensor, g: Tensor, clip: Tensor, hyper: AdamWHyper, step: number): void {
  // Bytes: p, m and v read and written, g read.
  const bytes = 28 * p.size;
  if (p.size % 4 === 0 && p.offset % 4 === 0 && g.offset % 4 === 0 && m.offset === 0 && v.offset === 0) {
    const n4 = p.size / 4;
    launch(adamwVec4Kernel(), { p, m, v, g, clip }, adamwParams(n4, p.offset / 4, g.offset / 4, hyper, step), adamwWorkgroups(n4), { bytes });
    return;
  }
  launch(adamwKernel(), { p, m, v, g, clip }, adamwParams(p.size, p.offset, g.offset, hyper, step), adamwWorkgroups(p.size), { bytes });
}

/** CPU reference (f64): one step on flat arrays, updating p, m, v in place. */
export function adamwCpu(p: Float64Array, g: ArrayLike<number>, m: Float64Array, v: Float64Array, h: AdamWHyper, step: number, clip = 1): void {
  const bc1 = 1 - h.beta1 ** step;
  const bc2 = 1 - h.beta2 ** step;
  for (let i = 0; i < p.length; i++) {
    const gi = g[i] * clip;
    p[i] -= h.lr * h.weightDecay * p[i];
    m[i] = h.beta1 * m[i] + (1 - h.beta1) * gi;
    v[i] = h.beta2 * v[i] + (1 - h.beta2) * gi * gi;
    p[i] -= (h.lr * (m[i] / bc1)) / (Math.sqrt(v[i] / bc2) + h.eps);
  }
}
