// The matmul kernels as an autotuned family (kernels/tune.ts): the search space (variant, rows per
// workgroup, column vec4s per invocation, lanes; 'window' as one candidate), the shape class, and
// timing on scratch operands of a call's real shape and layouts. Importing this module installs the
// hook planMatmul consults.

import type { Device } from '../engine/device.js';
import type { Tensor } from '../engine/tensor.js';
import { MAX_WORKGROUPS_PER_DIM } from './wgsl.js';
import {
  TILE_WG, aLayout, bLayout, fixedSubgroupSize, matmulConfig, matmulTuning,
  type MatmulCall, type MatmulKernelConfig, type MatmulOperand, type MatmulOptions,
} from './matmul-plan.js';
import { matmulWorkgroups } from './matmul-wgsl.js';
import { launchMatmul } from './matmul.js';
import { pow2, tunedChoice, zerosScratch, type TuneFamily } from './tune.js';

const ceil4 = (x: number) => Math.ceil(x / 4) * 4;

/** A candidate's id: `tiled`, `window`, `subgroup.r32.c1`, `register.r8.c2.l8`. */
export function matmulCandidateId(c: Pick<MatmulKernelConfig, 'variant' | 'rows' | 'colVecs' | 'lanes'>): string {
  if (c.variant === 'tiled') return 'tiled';
  if (c.variant === 'window') return 'window';
  if (c.variant === 'subgroup') return `subgroup.r${c.rows}.c${c.colVecs}`;
  return `register.r${c.rows}.c${c.colVecs}.l${c.lanes}`;
}

/** The options a candidate id stands for. */
export function matmulCandidateOptions(id: string): MatmulOptions {
  if (id === 'tiled') return { variant: 'tiled' };
  if (id === 'window') return { variant: 'window' };
  const m = /^(subgroup|register)\.r(\d+)\.c(\d+)(?:\.l(\d+))?$/.exec(id);
  if (!m) throw new Error(`matmul: unknown tuning candidate "${id}"`);
  const o: MatmulOptions = { variant: m[1] as 'subgroup' | 'register', rows: Number(m[2]), colVecs: Number(m[3]) };
  if (m[4]) o.lanes = Number(m[4]);
  return o;
}

/**
 * The search space on `device`, before the per-shape limits: 'subgroup' at S, 2S and 4S rows (a fixed
 * subgroup size S) and 1 or 2 column vec4s; 'window' on CPU adapters with such an S; 'register' at 4
 * or 8 rows, 1 or 2 column vec4s, 8 or 32 lanes; 'tiled' where a workgroup may have 256 invocations.
 */
export function matmulSearchSpace(device: Pick<Device, 'subgroups' | 'info' | 'isCpuAdapter'>): string[] {
  const ids: string[] = [];
  const s = fixedSubgroupSize(device);
  if (s) for (const r of new Set([s, 2 * s, 4 * s])) for (const c of [1, 2]) if (r <= 64) ids.push(`subgroup.r${r}.c${c}`);
  if (s && device.isCpuAdapter) ids.push('window');
  const maxLanes = device.info.limits.maxComputeInvocationsPerWorkgroup ?? 256;
  for (const r of [4, 8]) for (const c of [1, 2]) for (const l of [8, 32]) if (l <= maxLanes) ids.push(`register.r${r}.c${c}.l${l}`);
  if (maxLanes >= TILE_WG * TILE_WG && (device.info.limits.maxComputeWorkgroupSizeX ?? 256) >= TILE_WG) ids.push('tiled');
  return ids;
}

const layouts = (call: MatmulCall) => ({ a: aLayout(call.a, call.k), b: bLayout(call.b, call.k) });

/** Scratch strides that give A the layout `layout` (row-major where it is 'strided'). */
function scratchA(layout: string, rows: number, k: number, batches: number): { op: MatmulOperand; size: number } {
  if (layout === 'm4') {
    const ld = ceil4(rows);
    return { op: { offset: 0, batchStride: batches > 1 ? k * ld : 0, rowStride: 1, colStride: ld }, size: batches * k * ld };
  }
  return { op: { offset: 0, batchStride: batches > 1 ? rows * k : 0, rowStride: k, colStride: 1 }, size: batches * rows * k };
}

/** Scratch strides that give B [K, N] the layout `layout` (row-major where it is 'strided'). */
function scratchB(layout: string, k: number, n: number, batches: number): { op: MatmulOperand; size: number } {
  if (layout === 'k4') return { op: { offset: 0, batchStride: batches > 1 ? n * k : 0, rowStride: 1, colStride: k }, size: batches * n * k };
  const ld = layout === 'n4' ? ceil4(n) : n;
  return { op: { offset: 0, batchStride: batches > 1 ? k * ld : 0, rowStride: ld, colStride: 1 }, size: batches * k * ld };
}

/** The kernel configuration of candidate `id` for `call`, or null where it breaks a limit. */
function candidateConfig(device: Device, call: MatmulCall, id: string): MatmulKernelConfig | null {
  let c: MatmulKernelConfig;
  try {
    const lanes = id === 'tiled' ? TILE_WG * TILE_WG : matmulCandidateOptions(id).lanes ?? 0;
    if (lanes > (device.info.limits.maxComputeInvocationsPerWorkgroup ?? 256)) return null;
    c = matmulConfig(device, call, call.flags, matmulCandidateOptions(id));
  } catch {
    return null;
  }
  if (matmulWorkgroups(c, call.rows, call.n, call.batches).some((g) => g > MAX_WORKGROUPS_PER_DIM)) return null;
  return c;
}

export const MATMUL_FAMILY: TuneFamily<MatmulCall> = {
  name: 'matmul',
  classKey(call) {
    const { a, b } = layouts(call);
    const f = call.flags;
    const epi = [f.bias && 'bias', f.gelu && 'gelu', f.residual && 'residual', f.pre && 'pre'].filter(Boolean).join('+');
    const batch = call.batches > 1 ? ` b${pow2(call.batches)}` : '';
    return `m${pow2(call.rows)} k${pow2(call.k)} n${pow2(call.n)}${batch} a-${a} b-${b}${call.k % 4 ? ' ktail' : ''}${epi ? ` ${epi}` : ''}`;
  },
  rule(device, call) {
    return matmulCandidateId(matmulConfig(device, call, call.flags, {}));
  },
  candidates(device, call) {
    const ids = new Set([this.rule(device, call), ...matmulSearchSpace(device)]);
    return [...ids].filter((id) => candidateConfig(device, call, id) !== null);
  },
  scratch(device, call) {
    const { rows, k, n, batches, flags } = call;
    const { a: la, b: lb } = layouts(call);
    const A = scratchA(la, rows, k, batches);
    const B = scratchB(lb, k, n, batches);
    const outSize = batches * rows * n;
    const buffers: Record<string, Tensor> = { out: zerosScratch(device, outSize), a: zerosScratch(device, A.size), b: zerosScratch(device, B.size) };
    if (flags.bias) buffers.bias = zerosScratch(device, n);
    if (flags.residual) buffers.residual = zerosScratch(device, outSize);
    if (flags.pre) buffers.pre = zerosScratch(device, outSize);
    const scratchCall = { ...call, a: A.op, b: B.op };
    return {
      run(id) {
        const c = candidateConfig(device, scratchCall, id);
        if (!c) throw new Error(`matmul: candidate ${id} breaks a limit for this shape`);
        const config = { ...c, a: la === 'strided' ? 'strided' : c.a, b: lb === 'strided' ? 'strided' : c.b } as MatmulKernelConfig;
        launchMatmul(config, buffers, { rows, n, k, batches, a: A.op, b: B.op, biasOffset: 0, residualOffset: 0, keepPack: false });
      },
      dispose() {
        for (const t of Object.values(buffers)) t.dispose();
      },
    };
  },
  describe(call) {
    const { a, b } = layouts(call);
    const f = call.flags;
    const epi = [f.bias && 'bias', f.gelu && 'gelu', f.residual && 'residual', f.pre && 'pre'].filter(Boolean).join('+');
    return `${call.batches > 1 ? `${call.batches}× ` : ''}${call.rows}×${call.k}·${call.k}×${call.n} a-${a} b-${b}${epi ? ` ${epi}` : ''}`;
  },
};

matmulTuning.choose = (device, call) => {
  if (call.rows * call.k * call.n === 0) return null;
  const id = tunedChoice(device, MATMUL_FAMILY, call);
  // A stored choice that this call's size can't launch (or an unknown id) falls back to the rules.
  return id && candidateConfig(device, call, id) ? matmulCandidateOptions(id) : null;
};
