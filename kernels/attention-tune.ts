// The attention kernels (forward, backward dQ, backward dK·dV) as three autotuned families
// (kernels/tune.ts): the search space over invocations per workgroup, rows per invocation, streamed
// rows per step and subgroup broadcasts; the shape class (B·H and N rounded up to powers of two, the
// head dim exactly, as the source depends on it); and timing on zero scratch operands of the real
// shape. Importing this module installs the hook attentionVariant consults.

import type { Device } from '../engine/device.js';
import type { Tensor } from '../engine/tensor.js';
import { launch, MAX_WORKGROUPS_PER_DIM } from './wgsl.js';
import { attentionTuning, defaultVariants, subgroupWidth, type AttentionCall, type AttentionVariant, type AttentionVariants } from './attention-plan.js';
import {
  attentionBackwardDkvKernel, attentionBackwardDqKernel, attentionBackwardParams, attentionForwardKernel, attentionForwardParams, attentionWorkgroups,
  type HeadLayout,
} from './attention-wgsl.js';
import { pow2, tunedChoice, zerosScratch, type TuneFamily } from './tune.js';

type Kind = keyof AttentionVariants;

/** A candidate's id: `wg8.r2.kb1.sg8` (sg0: plain loads). */
export function attentionCandidateId(v: AttentionVariant): string {
  return `wg${v.wg}.r${v.rows}.kb${v.keyBlock}.sg${v.subgroup}`;
}

export function attentionCandidateVariant(id: string): AttentionVariant {
  const m = /^wg(\d+)\.r(\d+)\.kb(\d+)\.sg(\d+)$/.exec(id);
  if (!m) throw new Error(`attention: unknown tuning candidate "${id}"`);
  return { wg: Number(m[1]), rows: Number(m[2]), keyBlock: Number(m[3]), subgroup: Number(m[4]) };
}

/**
 * The search space on `device`: with subgroups at least 4 wide (S), S or 4S invocations with
 * broadcasts; always 32 or 128 invocations with plain loads; each with 1 or 2 rows per invocation and
 * 1 or 2 streamed rows per step. More rows cost LLVM steeply more compile time on lavapipe
 * (kernels/attention.ts), so the space stops at 2.
 */
export function attentionSearchSpace(device: Pick<Device, 'subgroups' | 'info'>): string[] {
  const maxLanes = device.info.limits.maxComputeInvocationsPerWorkgroup ?? 256;
  const s = subgroupWidth(device);
  const shapes: [number, number][] = [[32, 0], [128, 0]];
  if (s >= 4) shapes.unshift([s, s], [4 * s, s]);
  const ids: string[] = [];
  for (const [wg, subgroup] of shapes) {
    if (wg > maxLanes) continue;
    for (const rows of [1, 2]) for (const keyBlock of [1, 2]) ids.push(attentionCandidateId({ wg, rows, keyBlock, subgroup }));
  }
  return ids;
}

function fits(call: AttentionCall, v: AttentionVariant, maxLanes: number): boolean {
  return v.wg <= maxLanes && attentionWorkgroups(call.n, call.bh, v).every((g) => g <= MAX_WORKGROUPS_PER_DIM);
}

function family(kind: Kind): TuneFamily<AttentionCall> {
  return {
    name: `attention.${kind}`,
    classKey: (call) => `bh${pow2(call.bh)} n${pow2(call.n)} d${call.d}`,
    rule: (device) => attentionCandidateId(defaultVariants(device)[kind]),
    candidates(device, call) {
      const maxLanes = device.info.limits.maxComputeInvocationsPerWorkgroup ?? 256;
      const ids = new Set([this.rule(device, call), ...attentionSearchSpace(device)]);
      return [...ids].filter((id) => fits(call, attentionCandidateVariant(id), maxLanes));
    },
    scratch(device, call) {
      // Contiguous heads ([B·H, 1, N, D], one head per "batch"): the real launch may read strided
      // heads of a fused qkv, which moves the same rows in the same order.
      const { bh, n, d } = call;
      const size = bh * n * d;
      const inputs = { q: zerosScratch(device, size), k: zerosScratch(device, size), v: zerosScratch(device, size) };
      const buffers: Record<string, Tensor> =
        kind === 'forward'
          ? { out: zerosScratch(device, size), lse: zerosScratch(device, bh * n), ...inputs }
          : { ...(kind === 'dq' ? { dq: zerosScratch(device, size) } : { dkv: zerosScratch(device, 2 * size) }),
              ...inputs, dO: zerosScratch(device, size), stats: zerosScratch(device, 2 * bh * n) };
      const at = (offset: number): HeadLayout => ({ offset, batch: (n * d) / 4, head: 0, row: d / 4 });
      const l = at(0);
      const scale = 1 / Math.sqrt(d);
      const params = kind === 'forward'
        ? attentionForwardParams(n, bh, 1, scale, { q: l, k: l, v: l, out: l })
        : attentionBackwardParams(n, bh, 1, scale, { q: l, k: l, v: l, dOut: l, out1: l, out2: kind === 'dkv' ? at(size / 4) : l });
      const kernelOf = { forward: attentionForwardKernel, dq: attentionBackwardDqKernel, dkv: attentionBackwardDkvKernel }[kind];
      return {
        run(id) {
          const v = attentionCandidateVariant(id);
          launch(kernelOf(d, v), buffers, params, attentionWorkgroups(n, bh, v));
        },
        dispose() {
          for (const t of Object.values(buffers)) t.dispose();
        },
      };
    },
    describe: (call) => `B·H ${call.bh}, N ${call.n}, D ${call.d}`,
  };
}

export const ATTENTION_FAMILIES: Record<Kind, TuneFamily<AttentionCall>> = {
  forward: family('forward'),
  dq: family('dq'),
  dkv: family('dkv'),
};

attentionTuning.choose = (device, call) => {
  if (call.bh * call.n === 0) return null;
  const id = tunedChoice(device, ATTENTION_FAMILIES[call.kernel], call);
  if (!id) return null;
  try {
    const v = attentionCandidateVariant(id);
    // A stored choice this call's size can't launch, or one needing subgroups this device lacks: the rule.
    const sgOk = v.subgroup === 0 || (subgroupWidth(device) >= v.subgroup && v.wg % v.subgroup === 0);
    return sgOk && fits(call, v, device.info.limits.maxComputeInvocationsPerWorkgroup ?? 256) ? v : null;
  } catch {
    return null;
  }
};
