// Batched matrix multiply out[b] = act(A[b]·B[b] + bias) + residual over strided operands (transposed
// or broadcast operands are read in place), with the epilogue fused into the store.
//
// Three kernel families, picked per adapter (see `defaultMatmulVariant`):
// - 'subgroup' (CPU adapters with subgroups, i.e. lavapipe): one workgroup is one subgroup of S lanes
//   and owns `rows` output rows × 4·S·colVecs columns. Lavapipe (Mesa 25) turns every storage-buffer
//   load whose address is not a compile-time constant into a per-lane, bounds-checked scalar loop
//   (about 10 instructions per f32, even when all lanes read the same address), so the cost is the
//   number of load instructions, not bytes. Here each lane loads a different row of the A block and
//   subgroupBroadcast hands the values to all lanes (a register shuffle), so A costs rows/S loads per
//   step instead of rows; B is loaded as one vec4 of 4 columns per lane and k.
// - 'register': the same blocking without subgroups (every lane loads the A rows itself).
// - 'tiled': for real GPUs, 64×64 tiles staged in workgroup memory by a 16×16 workgroup, 4×4 outputs
//   per invocation. Barriers are slow on lavapipe (coroutine switches), so it is never picked there.
//
// Operand layouts, picked per call from the strides: A 'k4' (contiguous along k: vec4 loads along k),
// 'm4' (contiguous along m, e.g. Xᵀ in dW = Xᵀ·dY: vec4 loads along m), or 'strided' (scalar loads);
// B 'n4' (contiguous along n), 'k4' (contiguous along k: Wᵀ of a Linear weight stored [N, K]), or
// 'strided'. Nothing is transposed in memory.
//
// Out-of-range rows and columns are clamped to the last valid one for loading and not stored; with
// K % 4 != 0 (only in layouts that allow it) k is clamped too and the values past K are zeroed.

import { Tensor } from '../engine/tensor.js';
import type { Device } from '../engine/device.js';
import { ShapeError } from '../engine/errors.js';
import { broadcastShapes, broadcastStrides, collapseDims, shapeStr, sizeOf } from '../engine/shape.js';
import { noGrad } from '../engine/autograd.js';
import { contiguous, expand } from '../engine/ops/views.js';
import { ELEMENTWISE_OPS } from './elementwise.js';
import { ERF_WGSL, MAX_WORKGROUPS_PER_DIM, Params, defineKernel, paramsBlock, type Kernel } from './wgsl.js';

export type MatmulVariantName = 'subgroup' | 'register' | 'tiled';
export type MatmulALayout = 'k4' | 'm4' | 'strided';
export type MatmulBLayout = 'n4' | 'k4' | 'strided';

/** Every template parameter of a matmul kernel (all of it goes into the cache key). */
export interface MatmulKernelConfig {
  variant: MatmulVariantName;
  /** Output rows per workgroup ('subgroup', 'register'); a multiple of `lanes` for 'subgroup'. */
  rows: number;
  /** Groups of 4 columns per invocation ('subgroup', 'register'). */
  colVecs: number;
  /** Invocations per workgroup ('subgroup': the subgroup size; 'register': any). */
  lanes: number;
  a: MatmulALayout;
  b: MatmulBLayout;
  /** K % 4 != 0: blocks of 4 k's clamp k and zero the values past K. */
  kTail: boolean;
  bias: boolean;
  gelu: boolean;
  residual: boolean;
  /** Also store the pre-activation value (x·w + bias). */
  pre: boolean;
}

export interface MatmulEpilogue {
  /** Added per output column: a [N] tensor. */
  bias?: Tensor;
  /** Exact (erf) GELU after the bias. */
  gelu?: boolean;
  /** Added after the activation; its shape must broadcast to the output's. */
  residual?: Tensor;
  /** Also return the value before the activation (x·w + bias), as the backward of GELU needs it. */
  preActivation?: boolean;
}

/** Overrides for benchmarks and tests; by default everything is chosen per adapter and shape. */
export interface MatmulOptions {
  variant?: MatmulVariantName;
  rows?: number;
  colVecs?: number;
  /** Invocations per workgroup of the 'register' variant. */
  lanes?: number;
  /** Read both operands with scalar strided loads (disables the vec4 layouts). */
  forceStrided?: boolean;
}

/** Strides of one operand, in elements, as the kernel sees them. */
export interface MatmulOperand {
  offset: number;
  batchStride: number;
  rowStride: number;
  colStride: number;
}

// Params: [M, N, K, aOffset, aBatch, aRow, aCol, bOffset, bBatch, bRow, bCol, biasOffset, residualOffset]
const PARAM_WORDS = 13;

const TILE = 64;
const TILE_K = 16;
const TILE_WG = 16;

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

// ---- variant choice ----

/** True for adapters that are really CPUs (lavapipe/llvmpipe, SwiftShader, fallback adapters). */
export function isCpuAdapter(device: Device): boolean {
  const { info } = device;
  return (
    info.architecture === 'software' ||
    info.isFallbackAdapter ||
    /llvmpipe|lavapipe|swiftshader/i.test(`${info.device} ${info.description}`)
  );
}

/** The subgroup size when the device has subgroups and a fixed size the 'subgroup' kernel can use. */
export function fixedSubgroupSize(device: Device): number | null {
  if (!device.info.features.includes('subgroups')) return null;
  const ai = (device.gpu as { adapterInfo?: { subgroupMinSize?: number; subgroupMaxSize?: number } }).adapterInfo;
  const min = ai?.subgroupMinSize;
  if (!min || min !== ai?.subgroupMaxSize || min % 4 !== 0 || min > 64) return null;
  return min;
}

export function defaultMatmulVariant(device: Device): MatmulVariantName {
  if (!isCpuAdapter(device)) return 'tiled';
  return fixedSubgroupSize(device) ? 'subgroup' : 'register';
}

/** Layout of A [M, K] from its strides (size-1 axes have stride 0 here). */
export function aLayout(op: MatmulOperand, k: number): MatmulALayout {
  const aligned = op.offset % 4 === 0 && op.batchStride % 4 === 0;
  if (aligned && op.colStride === 1 && k % 4 === 0 && op.rowStride % 4 === 0) return 'k4';
  if (aligned && op.rowStride === 1 && op.colStride % 4 === 0) return 'm4';
  return 'strided';
}

/** Layout of B [K, N] from its strides (size-1 axes have stride 0 here). */
export function bLayout(op: MatmulOperand, k: number): MatmulBLayout {
  const aligned = op.offset % 4 === 0 && op.batchStride % 4 === 0;
  if (aligned && op.colStride === 1 && op.rowStride % 4 === 0) return 'n4';
  if (aligned && op.rowStride === 1 && k % 4 === 0 && op.colStride % 4 === 0) return 'k4';
  return 'strided';
}

/**
 * Default blocking (see bench/lab/matmul.lab.ts): 'subgroup' 32 rows (S, 2S for a short M, so few
 * distinct kernels get compiled), 'register' 8 rows (4 for a short M).
 */
function defaultRows(variant: MatmulVariantName, m: number, lanes: number): number {
  if (variant === 'subgroup') {
    const full = Math.max(lanes, Math.floor(32 / lanes) * lanes);
    return m <= lanes ? lanes : m <= 2 * lanes ? Math.min(2 * lanes, full) : full;
  }
  return m <= 4 ? 4 : 8;
}

export function matmulConfig(
  device: Device,
  m: number,
  k: number,
  a: MatmulOperand,
  b: MatmulOperand,
  epilogue: { bias: boolean; gelu: boolean; residual: boolean; pre: boolean },
  options: MatmulOptions = {},
): MatmulKernelConfig {
  const variant = options.variant ?? defaultMatmulVariant(device);
  let lanes = options.lanes ?? 8;
  if (variant === 'subgroup') {
    const s = fixedSubgroupSize(device);
    if (!s) throw new ShapeError(`matmul: the 'subgroup' variant needs a fixed subgroup size (adapter ${device.name})`);
    lanes = s;
  }
  let al = options.forceStrided ? 'strided' : aLayout(a, k);
  const bl = options.forceStrided ? 'strided' : bLayout(b, k);
  if (variant === 'tiled') lanes = TILE_WG * TILE_WG;
  const rows = variant === 'tiled' ? TILE : options.rows ?? defaultRows(variant, m, lanes);
  const colVecs = variant === 'tiled' ? TILE / 4 : options.colVecs ?? 1;
  if (variant === 'subgroup' && rows % lanes !== 0) throw new ShapeError(`matmul: rows ${rows} must be a multiple of the subgroup size ${lanes}`);
  if (variant === 'register' && al === 'm4' && rows % 4 !== 0) al = 'strided';
  const kTail = k % 4 !== 0;
  return { variant, rows, colVecs, lanes, a: al, b: bl, kTail, ...epilogue };
}

// ---- WGSL ----

function bindings(c: MatmulKernelConfig, vec4: boolean): string {
  const ty = (isVec: boolean) => (isVec ? 'vec4<f32>' : 'f32');
  const decl = [
    `@group(0) @binding(1) var<storage, read_write> out: array<f32>;`,
    `@group(0) @binding(2) var<storage, read> a: array<${ty(vec4 && c.a !== 'strided')}>;`,
    `@group(0) @binding(3) var<storage, read> b: array<${ty(vec4 && c.b !== 'strided')}>;`,
  ];
  let next = 4;
  if (c.bias) decl.push(`@group(0) @binding(${next++}) var<storage, read> bias: array<f32>;`);
  if (c.residual) decl.push(`@group(0) @binding(${next++}) var<storage, read> residual: array<f32>;`);
  if (c.pre) decl.push(`@group(0) @binding(${next++}) var<storage, read_write> pre: array<f32>;`);
  return decl.join('\n');
}

/** `finish(idx, col, x)`: the epilogue of one output element. */
function epilogueFn(c: MatmulKernelConfig): string {
  return `${c.gelu ? ERF_WGSL : ''}
fn finish(idx: u32, col: u32, x: f32) {
  var y = x;
  ${c.bias ? 'y += bias[pu(11u) + col];' : ''}
  ${c.pre ? 'pre[idx] = y;' : ''}
  ${c.gelu ? 'y = 0.5 * y * (1.0 + erf_f32(y * 0.7071067811865476));' : ''}
  ${c.residual ? 'y += residual[pu(12u) + idx];' : ''}
  out[idx] = y;
}

/** Stores the 4 columns col..col+3 of one output row that exist. */
fn finish4(rowBase: u32, col: u32, N: u32, v: vec4<f32>) {
  for (var c = 0u; c < 4u; c++) {
    if (col + c < N) { finish(rowBase + col + c, col + c, v[c]); }
  }
}`;
}

const OPERAND_PARAMS = `
  let M = pu(0u); let N = pu(1u); let K = pu(2u);
  let batch = wid.z;
  let aBase = pu(3u) + batch * pu(4u); let aRS = pu(5u); let aCS = pu(6u);
  let bBase = pu(7u) + batch * pu(8u); let bRS = pu(9u); let bCS = pu(10u);
  let lastRow = M - 1u; let lastCol = N - 1u; let lastK = max(K, 1u) - 1u;`;

/** 'subgroup' and 'register': one workgroup of `lanes` owns `rows` rows; lanes split the columns. */
function blockedSource(c: MatmulKernelConfig): string {
  const { rows: R, colVecs: J, lanes: S } = c;
  const share = c.variant === 'subgroup';
  const G = share ? R / S : 0; // A loads per k-block in the shared layouts
  const rowsR = range(R);
  const colsJ = range(J);

  // Loop-invariant operand indices.
  const setup: string[] = [];
  if (c.a === 'k4') {
    setup.push('let aBase4 = aBase / 4u; let aRS4 = aRS / 4u;');
    if (share) for (let g = 0; g < G; g++) setup.push(`let aRow${g} = aBase4 + min(row0 + ${g * S}u + lane, lastRow) * aRS4;`);
    else for (const r of rowsR) setup.push(`let aRow${r} = aBase4 + min(row0 + ${r}u, lastRow) * aRS4;`);
  } else if (c.a === 'm4') {
    setup.push('let lastRow4 = lastRow & ~3u;');
    if (share) {
      setup.push('let aKl = lane % 4u;');
      for (let g = 0; g < G; g++) setup.push(`let aRow${g} = aBase + min(row0 + ${g * S}u + (lane / 4u) * 4u, lastRow4);`);
    } else for (let q = 0; q < R / 4; q++) setup.push(`let aRow${q} = aBase + min(row0 + ${q * 4}u, lastRow4);`);
  } else {
    if (share) for (let g = 0; g < G; g++) setup.push(`let aRow${g} = aBase + min(row0 + ${g * S}u + lane, lastRow) * aRS;`);
    else for (const r of rowsR) setup.push(`let aRow${r} = aBase + min(row0 + ${r}u, lastRow) * aRS;`);
  }
  const colOf = (j: number) => `colBase + ${j * S * 4}u`;
  if (c.b === 'n4') {
    setup.push('let bBase4 = bBase / 4u; let bRS4 = bRS / 4u; let lastCol4 = lastCol & ~3u;');
    for (const j of colsJ) setup.push(`let bCol${j} = min(${colOf(j)}, lastCol4) / 4u;`);
  } else if (c.b === 'k4') {
    setup.push('let bBase4 = bBase / 4u; let bCS4 = bCS / 4u;');
    for (const j of colsJ) for (let e = 0; e < 4; e++) setup.push(`let bCol${j}_${e} = bBase4 + min(${colOf(j)} + ${e}u, lastCol) * bCS4;`);
  } else {
    for (const j of colsJ) for (let e = 0; e < 4; e++) setup.push(`let bCol${j}_${e} = bBase + min(${colOf(j)} + ${e}u, lastCol) * bCS;`);
  }

  /** One block of 4 k's starting at k0 (k4 = k0 / 4); `tail` clamps k and zeroes the values past K. */
  const block = (tail: boolean): string => {
    const kc = (kk: number) => (tail ? `min(k0 + ${kk}u, lastK)` : `(k0 + ${kk}u)`);
    const zs = (kk: number, v: string) => (tail ? `select(0.0, ${v}, k0 + ${kk}u < K)` : v);
    const zv = (kk: number, v: string) => (tail ? `select(vec4<f32>(), ${v}, k0 + ${kk}u < K)` : v);
    const out: string[] = [];
    // A values: v{r}_{kk}
    const av: string[][] = rowsR.map(() => []);
    if (share) {
      for (let g = 0; g < G; g++) {
        if (c.a === 'k4') out.push(`let ag${g} = a[aRow${g} + k4];`);
        else if (c.a === 'm4') {
          const kA = tail ? 'min(k0 + aKl, lastK)' : '(k0 + aKl)';
          const v = `a[(aRow${g} + ${kA} * aCS) / 4u]`;
          out.push(`let ag${g} = ${tail ? `select(vec4<f32>(), ${v}, k0 + aKl < K)` : v};`);
        } else out.push(`let ag${g} = vec4<f32>(${range(4).map((kk) => zs(kk, `a[aRow${g} + ${kc(kk)} * aCS]`)).join(', ')});`);
      }
      for (const r of rowsR) {
        const g = Math.floor(r / S);
        const w = r % S;
        for (let kk = 0; kk < 4; kk++) {
          const src = c.a === 'm4' ? `subgroupBroadcast(ag${g}[${w % 4}], ${Math.floor(w / 4) * 4 + kk}u)` : `subgroupBroadcast(ag${g}[${kk}], ${w}u)`;
          out.push(`let v${r}_${kk} = ${src};`);
          av[r][kk] = `v${r}_${kk}`;
        }
      }
    } else if (c.a === 'k4') {
      for (const r of rowsR) {
        out.push(`let ar${r} = a[aRow${r} + k4];`);
        for (let kk = 0; kk < 4; kk++) av[r][kk] = `ar${r}[${kk}]`;
      }
    } else if (c.a === 'm4') {
      for (let q = 0; q < R / 4; q++) {
        for (let kk = 0; kk < 4; kk++) {
          out.push(`let ar${q}_${kk} = ${zv(kk, `a[(aRow${q} + ${kc(kk)} * aCS) / 4u]`)};`);
          for (let e = 0; e < 4; e++) av[q * 4 + e][kk] = `ar${q}_${kk}[${e}]`;
        }
      }
    } else {
      for (const r of rowsR) {
        for (let kk = 0; kk < 4; kk++) {
          out.push(`let ar${r}_${kk} = ${zs(kk, `a[aRow${r} + ${kc(kk)} * aCS]`)};`);
          av[r][kk] = `ar${r}_${kk}`;
        }
      }
    }
    // B values: b{kk}_{j} = vec4 of the 4 columns of group j at k0 + kk
    for (const j of colsJ) {
      if (c.b === 'n4') {
        for (let kk = 0; kk < 4; kk++) out.push(`let b${kk}_${j} = ${zv(kk, `b[bBase4 + ${kc(kk)} * bRS4 + bCol${j}]`)};`);
      } else if (c.b === 'k4') {
        for (let e = 0; e < 4; e++) out.push(`let bt${j}_${e} = b[bCol${j}_${e} + k4];`);
        for (let kk = 0; kk < 4; kk++) out.push(`let b${kk}_${j} = vec4<f32>(bt${j}_0[${kk}], bt${j}_1[${kk}], bt${j}_2[${kk}], bt${j}_3[${kk}]);`);
      } else {
        for (let kk = 0; kk < 4; kk++) {
          out.push(`let b${kk}_${j} = ${zv(kk, `vec4<f32>(${range(4).map((e) => `b[bCol${j}_${e} + ${kc(kk)} * bRS]`).join(', ')})`)};`);
        }
      }
    }
    // One masked accumulator update per block (lavapipe blends every loop-carried write with the
    // execution mask, so summing the 4 products first saves 3 blends per accumulator).
    for (const r of rowsR) {
      for (const j of colsJ) {
        out.push(`acc${r}_${j} += ${range(4).map((kk) => `${av[r][kk]} * b${kk}_${j}`).join(' + ')};`);
      }
    }
    return out.join('\n    ');
  };

  return `${share ? 'enable subgroups;\n' : ''}// matmul '${c.variant}': ${R} rows × ${J * 4 * S} cols per workgroup of ${S}, A ${c.a}, B ${c.b}
${paramsBlock(PARAM_WORDS)}
${bindings(c, true)}
${epilogueFn(c)}

@compute @workgroup_size(${S})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32${share ? ', @builtin(subgroup_invocation_id) sl: u32' : ''}) {
  ${OPERAND_PARAMS}
  let lane = ${share ? 'sl' : 'li'};
  let row0 = wid.y * ${R}u;
  let colBase = (wid.x * ${J * S}u + lane) * 4u;
  ${setup.join('\n  ')}
  ${rowsR.flatMap((r) => colsJ.map((j) => `var acc${r}_${j} = vec4<f32>();`)).join('\n  ')}
  // With K % 4 != 0 every block clamps k and zeroes the values past K (cheaper to compile than a
  // separate copy of the block for the tail, and the loads dominate the run time anyway).
  let K4 = ${c.kTail ? '(K + 3u) / 4u' : 'K / 4u'};
  for (var k4 = 0u; k4 < K4; k4++) {
    let k0 = k4 * 4u;
    ${block(c.kTail)}
  }
  // Epilogue through a local array, so the store code is one loop rather than ${R * J} unrolled copies.
  var tile: array<vec4<f32>, ${R * J}>;
  ${rowsR.flatMap((r) => colsJ.map((j) => `tile[${r * J + j}] = acc${r}_${j};`)).join('\n  ')}
  // A trip count only known at run time keeps the compiler from unrolling this loop back.
  let tEnd = min(${R}u, M - row0) * ${J}u;
  for (var t = 0u; t < tEnd; t++) {
    finish4((batch * M + row0 + t / ${J}u) * N, colBase + (t % ${J}u) * ${S * 4}u, N, tile[t]);
  }
}
`;
}

/** 'tiled': 64×64 output tiles staged through workgroup memory, 16×16 invocations of 4×4 outputs. */
function tiledSource(c: MatmulKernelConfig): string {
  const T = TILE;
  const BK = TILE_K;
  const W = TILE_WG;
  const per = (T * BK) / (W * W);
  // Fill order: consecutive invocations read consecutive addresses of a contiguous operand.
  const aFill = c.a === 'k4' ? `let kk = e % ${BK}u; let m = e / ${BK}u;` : `let m = e % ${T}u; let kk = e / ${T}u;`;
  const bFill = c.b === 'k4' ? `let kk = e % ${BK}u; let n = e / ${BK}u;` : `let n = e % ${T}u; let kk = e / ${T}u;`;
  return `// matmul 'tiled': ${T}×${T} tiles, k-steps of ${BK}, ${W}×${W} invocations of 4×4 outputs
${paramsBlock(PARAM_WORDS)}
${bindings(c, false)}
${epilogueFn(c)}

// [k][m / 4] and [k][n / 4]: one vec4 read gives an invocation its 4 rows (columns) at one k.
var<workgroup> tileA: array<vec4<f32>, ${(T * BK) / 4}>;
var<workgroup> tileB: array<vec4<f32>, ${(T * BK) / 4}>;

@compute @workgroup_size(${W}, ${W})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  ${OPERAND_PARAMS}
  let row0 = wid.y * ${T}u;
  let col0 = wid.x * ${T}u;
  var acc0 = vec4<f32>(); var acc1 = vec4<f32>(); var acc2 = vec4<f32>(); var acc3 = vec4<f32>();
  for (var kt = 0u; kt < K; kt += ${BK}u) {
    for (var i = 0u; i < ${per}u; i++) {
      let e = li + i * ${W * W}u;
      {
        ${aFill}
        let gr = row0 + m; let gk = kt + kk;
        var v = 0.0;
        if (gr < M && gk < K) { v = a[aBase + gr * aRS + gk * aCS]; }
        tileA[kk * ${T / 4}u + m / 4u][m % 4u] = v;
      }
      {
        ${bFill}
        let gc = col0 + n; let gk = kt + kk;
        var v = 0.0;
        if (gc < N && gk < K) { v = b[bBase + gk * bRS + gc * bCS]; }
        tileB[kk * ${T / 4}u + n / 4u][n % 4u] = v;
      }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${BK}u; kk++) {
      let av = tileA[kk * ${T / 4}u + lid.y];
      let bv = tileB[kk * ${T / 4}u + lid.x];
      acc0 += av.x * bv; acc1 += av.y * bv; acc2 += av.z * bv; acc3 += av.w * bv;
    }
    workgroupBarrier();
  }
  let col = col0 + lid.x * 4u;
  let r = row0 + lid.y * 4u;
  if (r < M) { finish4((batch * M + r) * N, col, N, acc0); }
  if (r + 1u < M) { finish4((batch * M + r + 1u) * N, col, N, acc1); }
  if (r + 2u < M) { finish4((batch * M + r + 2u) * N, col, N, acc2); }
  if (r + 3u < M) { finish4((batch * M + r + 3u) * N, col, N, acc3); }
}
`;
}

export function matmulKernelKey(c: MatmulKernelConfig): string {
  const flags = `${c.bias ? 'b' : ''}${c.gelu ? 'g' : ''}${c.residual ? 'r' : ''}${c.pre ? 'p' : ''}`;
  return `matmul:${c.variant}:${c.rows}x${c.colVecs}x${c.lanes}:a-${c.a}:b-${c.b}:${c.kTail ? 'tail' : 'k4'}:${flags}`;
}

export function matmulKernel(c: MatmulKernelConfig): Kernel {
  return defineKernel(matmulKernelKey(c), () => ({
    name: matmulKernelKey(c),
    source: c.variant === 'tiled' ? tiledSource(c) : blockedSource(c),
    paramWords: PARAM_WORDS,
  }));
}

export function matmulParams(
  m: number,
  n: number,
  k: number,
  a: MatmulOperand,
  b: MatmulOperand,
  biasOffset = 0,
  residualOffset = 0,
): Uint32Array {
  return new Params()
    .u32(m, n, k)
    .u32(a.offset, a.batchStride, a.rowStride, a.colStride)
    .u32(b.offset, b.batchStride, b.rowStride, b.colStride)
    .u32(biasOffset, residualOffset)
    .toArray();
}

export function matmulWorkgroups(c: MatmulKernelConfig, m: number, n: number, batch: number): [number, number, number] {
  if (c.variant === 'tiled') return [Math.ceil(n / TILE), Math.ceil(m / TILE), batch];
  return [Math.ceil(n / (4 * c.colVecs * c.lanes)), Math.ceil(m / c.rows), batch];
}

// ---- launcher ----

/** Batch stride of `t` (rank >= 2) over `batch` as one number, or null when its batch axes don't flatten. */
function flatBatchStride(t: Tensor, batch: readonly number[]): number | null {
  const st = broadcastStrides(t.shape.slice(0, -2), t.strides.slice(0, -2), batch, 'matmul');
  const c = collapseDims(batch, [st]);
  if (c.shape.length === 0) return 0;
  if (c.shape.length === 1) return c.strides[0][0];
  return null;
}

/**
 * How `t` is read: its strides, or (when its batch axes don't flatten to one stride) those of the
 * contiguous copy the launcher makes. Strides of size-1 axes are 0, which keeps the layout tests simple.
 */
function operandOf(t: Tensor, batch: readonly number[]): { op: MatmulOperand; copy: boolean } {
  const r = t.rank;
  const rows = t.shape[r - 2];
  const cols = t.shape[r - 1];
  const single = sizeOf(batch) === 1;
  const bs = flatBatchStride(t, batch);
  if (bs === null) {
    return { op: { offset: 0, batchStride: single ? 0 : rows * cols, rowStride: rows === 1 ? 0 : cols, colStride: cols === 1 ? 0 : 1 }, copy: true };
  }
  return {
    op: {
      offset: t.offset,
      batchStride: single ? 0 : bs,
      rowStride: rows === 1 ? 0 : t.strides[r - 2],
      colStride: cols === 1 ? 0 : t.strides[r - 1],
    },
    copy: false,
  };
}

interface Plan {
  m: number;
  k: number;
  n: number;
  batch: number[];
  outShape: number[];
  /** Rows and batches as the kernel sees them (the batch may be folded into the rows). */
  rows: number;
  batches: number;
  a: { op: MatmulOperand; copy: boolean };
  b: { op: MatmulOperand; copy: boolean };
  config: MatmulKernelConfig;
}

function plan(a: Tensor, b: Tensor, epilogue: MatmulEpilogue, options: MatmulOptions): Plan {
  a.assertAlive('matmul');
  b.assertAlive('matmul');
  if (a.rank < 2 || b.rank < 2) throw new ShapeError(`matmul: operands must have at least two axes, got ${shapeStr(a.shape)} · ${shapeStr(b.shape)}`);
  if (a.device !== b.device) throw new ShapeError('matmul: operands live on different devices');
  const [m, k] = a.shape.slice(-2);
  const [k2, n] = b.shape.slice(-2);
  if (k !== k2) throw new ShapeError(`matmul: inner dimensions differ: ${shapeStr(a.shape)} · ${shapeStr(b.shape)}`);
  const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), 'matmul');
  const outShape = [...batch, m, n];
  const { bias, residual } = epilogue;
  if (bias) {
    bias.assertAlive('matmul bias');
    if (bias.rank !== 1 || bias.shape[0] !== n) throw new ShapeError(`matmul: bias ${shapeStr(bias.shape)} must be [${n}]`);
  }
  if (residual) {
    residual.assertAlive('matmul residual');
    if (broadcastShapes(residual.shape, outShape, 'matmul residual').join() !== outShape.join()) {
      throw new ShapeError(`matmul: residual ${shapeStr(residual.shape)} does not broadcast to the output ${shapeStr(outShape)}`);
    }
  }
  let A = operandOf(a, batch);
  const B = operandOf(b, batch);
  let rows = m;
  let batches = sizeOf(batch);
  // x [B, T, K] · W [K, N]: when A's rows run on across batches, fold the batch into the rows
  // ([B·T, K]), so each batch's last block of rows isn't mostly padding (the output is laid out alike).
  if (batches > 1 && b.rank === 2 && !A.copy && (m === 1 || A.op.batchStride === m * A.op.rowStride)) {
    A = { op: { ...A.op, rowStride: m === 1 ? A.op.batchStride : A.op.rowStride, batchStride: 0 }, copy: false };
    rows = batches * m;
    batches = 1;
  }
  const flags = { bias: !!bias, gelu: !!epilogue.gelu, residual: !!residual, pre: !!epilogue.preActivation };
  const config = matmulConfig(a.device, rows, k, A.op, B.op, flags, options);
  return { m, k, n, batch, outShape, rows, batches, a: A, b: B, config };
}

/** The kernel configuration `matmulFused` would use for these arguments (for tests and the lab). */
export function matmulPlan(a: Tensor, b: Tensor, epilogue: MatmulEpilogue = {}, options: MatmulOptions = {}): MatmulKernelConfig {
  return plan(a, b, epilogue, options).config;
}

/**
 * act(a·b + bias) + residual for a [..., M, K] and b [..., K, N] with broadcast batch axes. Transposed
 * and broadcast views are read in place; only batch axes that don't flatten to one stride are copied.
 * `pre` (when asked for) holds a·b + bias.
 */
export function matmulFused(a: Tensor, b: Tensor, epilogue: MatmulEpilogue = {}, options: MatmulOptions = {}): { out: Tensor; pre?: Tensor } {
  const p = plan(a, b, epilogue, options);
  const device = a.device;
  const out = Tensor.empty(device, p.outShape);
  const pre = epilogue.preActivation ? Tensor.empty(device, p.outShape) : undefined;
  if (out.size === 0) return { out, pre };

  const temps: Tensor[] = [];
  /** `t` as a contiguous tensor of `shape` (itself when it already is one). */
  const packed = (t: Tensor, shape: readonly number[]): Tensor => {
    if (t.shape.join() === shape.join() && t.isContiguous) return t;
    const c = noGrad(() => {
      const e = expand(t, shape);
      const cc = contiguous(e);
      e.dispose();
      return cc;
    });
    temps.push(c);
    return c;
  };
  try {
    const srcA = p.a.copy ? packed(a, [...p.batch, p.m, p.k]) : a;
    const srcB = p.b.copy ? packed(b, [...p.batch, p.k, p.n]) : b;
    const buffers = [out.storage.buffer, srcA.storage.buffer, srcB.storage.buffer];
    let biasOffset = 0;
    let residualOffset = 0;
    if (epilogue.bias) {
      const bt = packed(epilogue.bias, [p.n]);
      buffers.push(bt.storage.buffer);
      biasOffset = bt.offset;
    }
    if (epilogue.residual) {
      const rt = packed(epilogue.residual, p.outShape);
      buffers.push(rt.storage.buffer);
      residualOffset = rt.offset;
    }
    if (pre) buffers.push(pre.storage.buffer);
    const groups = matmulWorkgroups(p.config, p.rows, p.n, p.batches);
    if (groups.some((g) => g > MAX_WORKGROUPS_PER_DIM)) {
      throw new ShapeError(`matmul: ${shapeStr(p.outShape)} needs ${groups.join('×')} workgroups, over the ${MAX_WORKGROUPS_PER_DIM} per dimension WebGPU allows; split the batch or the rows`);
    }
    const opA = { ...p.a.op, offset: srcA.offset };
    const opB = { ...p.b.op, offset: srcB.offset };
    device.dispatch(
      matmulKernel(p.config),
      buffers,
      matmulParams(p.rows, p.n, p.k, opA, opB, biasOffset, residualOffset),
      groups,
    );
  } finally {
    for (const t of temps) t.dispose();
  }
  return { out, pre };
}

// ---- CPU references ----

/** CPU reference in f64: A [batch, M, K] · B [batch, K, N], both contiguous. */
export function matmulCpu(a: ArrayLike<number>, b: ArrayLike<number>, batch: number, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(batch * m * n);
  for (let t = 0; t < batch; t++) {
    for (let i = 0; i < m; i++) {
      for (let p = 0; p < k; p++) {
        const av = a[t * m * k + i * k + p];
        for (let j = 0; j < n; j++) c[t * m * n + i * n + j] += av * b[t * k * n + p * n + j];
      }
    }
  }
  return c;
}

/**
 * CPU reference of the epilogue on a [batch, M, N] product: returns act(x + bias) + residual and the
 * pre-activation x + bias (residual is [batch, M, N] or absent, bias [N] or absent).
 */
export function matmulEpilogueCpu(
  x: ArrayLike<number>,
  n: number,
  opts: { bias?: ArrayLike<number>; gelu?: boolean; residual?: ArrayLike<number> },
): { out: Float64Array; pre: Float64Array } {
  const out = new Float64Array(x.length);
  const pre = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    let y = x[i] + (opts.bias ? opts.bias[i % n] : 0);
    pre[i] = y;
    if (opts.gelu) y = ELEMENTWISE_OPS.gelu.cpu([y]);
    if (opts.residual) y += opts.residual[i];
    out[i] = y;
  }
  return { out, pre };
}
