// Which attention kernels run: the variant (invocations per workgroup, rows per invocation, streamed
// rows per step, subgroup width) per device, and the head dims the generators support. Why the
// defaults are what they are: kernels/attention.ts.

import type { Device } from '../engine/device.js';
import { ShapeError } from '../engine/errors.js';
import { fixedSubgroupSize } from './wgsl.js';

/**
 * Shape of one attention kernel launch: invocations per workgroup, rows per invocation, streamed rows
 * per loop step, and the subgroup size the broadcasts assume (0: no subgroup operations).
 */
export interface AttentionVariant {
  wg: number;
  rows: number;
  keyBlock: number;
  subgroup: number;
}

/** A variant for each kernel. */
export interface AttentionVariants {
  forward: AttentionVariant;
  dq: AttentionVariant;
  dkv: AttentionVariant;
}

/** With subgroups at least 8 wide: chosen with bench/lab/attention.lab.ts on lavapipe. */
export const SUBGROUP_VARIANTS: AttentionVariants = {
  forward: { wg: 8, rows: 2, keyBlock: 1, subgroup: 8 },
  dq: { wg: 8, rows: 1, keyBlock: 1, subgroup: 8 },
  dkv: { wg: 8, rows: 1, keyBlock: 1, subgroup: 8 },
};

/**
 * Lavapipe at 512-bit vectors (subgroups of 16): dQ and dK·dV with workgroups of one full subgroup, a
 * 64-wide row streamed in one vec4 per lane. In bench/lab/attention.lab.ts at ViT-B/16 batch 8 (best of
 * 9, 2026-11-30): dQ 33.7–34.2 ms against 40.5–41.5 with the 8-lane variant, dK·dV 50.9–56.6 against
 * 56.8–58.9. The forward at 16:2:1:16 ran level with 8:2:1:8 (24.4–25.4 against 25.0–25.2 ms), so it
 * keeps the 8-lane variant. dQ with 2 rows (16:2:1:16, 29.8–32.1 ms) took 21 s to compile cold against
 * 6.5 s (bench/RESULTS.md, "Attention at 16 lanes").
 */
export const SUBGROUP16_VARIANTS: AttentionVariants = {
  forward: SUBGROUP_VARIANTS.forward,
  dq: { wg: 16, rows: 1, keyBlock: 1, subgroup: 16 },
  dkv: { wg: 16, rows: 1, keyBlock: 1, subgroup: 16 },
};

/** Without subgroups (or with subgroups narrower than 8): plain loads, which a GPU's caches broadcast. */
export const PLAIN_VARIANTS: AttentionVariants = {
  forward: { wg: 32, rows: 1, keyBlock: 1, subgroup: 0 },
  dq: { wg: 32, rows: 1, keyBlock: 1, subgroup: 0 },
  dkv: { wg: 32, rows: 1, keyBlock: 1, subgroup: 0 },
};

/** The subgroup size every compute subgroup of `device` is guaranteed to have, 0 without subgroups. */
export function subgroupWidth(device: Pick<Device, 'subgroups'>): number {
  return device.subgroups?.minSize ?? 0;
}

/**
 * The variants for `device`: subgroup broadcasts where every subgroup is at least 8 wide, with the
 * 16-lane backward kernels on CPU adapters whose subgroups are exactly 16 wide (lavapipe at 512 bits;
 * GPUs with such subgroups were not measured).
 */
export function defaultVariants(device: Pick<Device, 'subgroups'> & Partial<Pick<Device, 'isCpuAdapter'>>): AttentionVariants {
  if (device.isCpuAdapter && fixedSubgroupSize(device) === 16) return SUBGROUP16_VARIANTS;
  return subgroupWidth(device) >= 8 ? SUBGROUP_VARIANTS : PLAIN_VARIANTS;
}

/** One attention launch as the autotuner sees it (kernels/attention-tune.ts): which kernel, B·H, N, D. */
export interface AttentionCall {
  kernel: keyof AttentionVariants;
  bh: number;
  n: number;
  d: number;
}

/** Set by kernels/attention-tune.ts: the variant for a launch given none, or null for defaultVariants. */
export const attentionTuning: { choose: ((device: Device, call: AttentionCall) => AttentionVariant | null) | null } = { choose: null };

/** The variant of one launch given none: the autotuner's where it has one, else the rule's. */
export function attentionVariant(device: Device, call: AttentionCall): AttentionVariant {
  return attentionTuning.choose?.(device, call) ?? defaultVariants(device)[call.kernel];
}

/** Head dims the kernels are generated for: a multiple of 4, at most 256. */
export function checkHeadDim(d: number): void {
  if (!(d > 0 && d % 4 === 0 && d <= 256)) {
    throw new ShapeError(`attention: head dim ${d} unsupported (a multiple of 4, at most 256)`);
  }
}

export function checkVariant(v: AttentionVariant): void {
  const ok = v.rows >= 1 && v.keyBlock >= 1 && v.wg >= 1 && (v.subgroup === 0 || v.wg % v.subgroup === 0);
  if (!ok) throw new ShapeError(`attention: invalid kernel variant ${JSON.stringify(v)}`);
}
