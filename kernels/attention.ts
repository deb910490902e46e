// Fused scaled-dot-product attention, forward and backward, flash-attention style: the N×N score
// matrix never reaches memory. q, k, v, out and their gradients are contiguous f32 [B, H, N, D], with
// D (a multiple of 4) baked into the WGSL; the generated code is fully unrolled over D.
//
// Forward: one invocation owns `rows` query rows; their q rows (pre-multiplied by scale·log2 e, so
// every exponential is a bare exp2) and output accumulators stay in private memory while the key and
// value rows stream past, `keyBlock` at a time, with the online-softmax rescale once per block. The
// per-row log-sum-exp (natural log, of the scaled scores) is written for the backward.
//
// Backward (FlashAttention-2 without atomics): a small kernel packs (lse·log2 e, Di = rowsum(dOut∘out))
// per row; then one kernel loops over the keys per query row for dQ, and one loops over the queries per
// key row for dK and dV, both recomputing p = exp(s·scale − lse). That computes s and dP twice (7
// D-length products per (i, j) pair instead of 5) but needs neither N×N scratch nor atomics.
//
// Why the code looks the way it does (lavapipe, Mesa 25, measured with bench/lab/attention.lab.ts):
// - Each storage load is a per-lane scalar gather with a bounds check and a branch (~3 cycles per
//   float per lane), even when every lane reads the same address, while arithmetic runs 8 lanes wide.
//   The streamed rows are the same for every invocation, so with `subgroup` = S > 0 each lane loads a
//   different vec4 of the row and subgroupBroadcast (an extract and a splat there) hands it to the
//   others: S times fewer loads, 5–10× faster than plain loads.
// - More rows per invocation amortize those loads further (forward: 2 rows are ~30% faster than 1),
//   but LLVM's compile time grows steeply with the private state (2·D·rows floats and more): a D = 64
//   forward compiles in seconds with 2 rows and takes tens of seconds with 3 or 4. The defaults stop
//   where the gain stops paying for the compile; lavapipe caches compiled shaders on disk.
// - Key blocks beyond 1 added register pressure and no speed.
// Invocations never return early (rows past N are clamped and only their stores are skipped), so every
// subgroup is full for the broadcasts. On GPUs without subgroups the plain variants read the rows
// directly, which their caches broadcast anyway.

import { Tensor } from '../engine/tensor.js';
import { ShapeError } from '../engine/errors.js';
import { shapeStr } from '../engine/shape.js';
import { writeElementwise } from '../engine/ops/elementwise.js';
import type { Device } from '../engine/device.js';
import { Params, defineKernel, grid1d, linearIndex, paramsBlock, MAX_WORKGROUPS_PER_DIM, type Kernel } from './wgsl.js';

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

/** Without subgroups (or with subgroups narrower than 8): plain loads, which a GPU's caches broadcast. */
export const PLAIN_VARIANTS: AttentionVariants = {
  forward: { wg: 32, rows: 1, keyBlock: 1, subgroup: 0 },
  dq: { wg: 32, rows: 1, keyBlock: 1, subgroup: 0 },
  dkv: { wg: 32, rows: 1, keyBlock: 1, subgroup: 0 },
};

/** The subgroup size every compute subgroup of `device` is guaranteed to have, 0 without subgroups. */
export function subgroupWidth(device: Device): number {
  if (!device.info.features.includes('subgroups')) return 0;
  return (device.gpu as { adapterInfo?: GPUAdapterInfo }).adapterInfo?.subgroupMinSize ?? 0;
}

/** The variants for `device`: subgroup broadcasts where every subgroup is at least 8 wide. */
export function defaultVariants(device: Device): AttentionVariants {
  return subgroupWidth(device) >= 8 ? SUBGROUP_VARIANTS : PLAIN_VARIANTS;
}

/** Head dims the kernels are generated for: a multiple of 4, at most 256. */
export function checkHeadDim(d: number): void {
  if (!(d > 0 && d % 4 === 0 && d <= 256)) {
    throw new ShapeError(`attention: head dim ${d} unsupported (a multiple of 4, at most 256)`);
  }
}

function checkVariant(v: AttentionVariant): void {
  const ok = v.rows >= 1 && v.keyBlock >= 1 && v.wg >= 1 && (v.subgroup === 0 || v.wg % v.subgroup === 0);
  if (!ok) throw new ShapeError(`attention: invalid kernel variant ${JSON.stringify(v)}`);
}

const LOG2E = Math.LOG2E;
/** Masks scores of keys past N: finite, so (−BIG) − (−BIG) never makes a NaN. */
const NEG_BIG = '-1.0e30';

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const each = (n: number, f: (i: number) => string, sep = '\n    ') => range(n).map(f).join(sep);

/**
 * A row of `d4` vec4s of `buf` starting at vec4 index `at`, read by every invocation of a subgroup:
 * `loads` fetches it (one vec4 per lane per S chunks, with subgroups) and `chunk(c)` is its c-th vec4.
 */
function streamedRow(subgroup: number, d4: number, buf: string, name: string, at: string): { loads: string; chunk: (c: number) => string } {
  if (!subgroup) return { loads: `let ${name} = ${at};`, chunk: (c) => `${buf}[${name} + ${c}u]` };
  const parts = Math.ceil(d4 / subgroup);
  return {
    loads: range(parts).map((m) => `let ${name}_${m} = ${buf}[${at} + min(${m * subgroup}u + sgid, ${d4 - 1}u)];`).join(' '),
    chunk: (c) => `subgroupBroadcast(${name}_${Math.floor(c / subgroup)}, ${c % subgroup}u)`,
  };
}

/** Kernel name suffix for errors and VITGPU_DEBUG_WGSL filters: D and the variant. */
const variantName = (d: number, v: AttentionVariant) => `d${d}_${v.wg}x${v.rows}x${v.keyBlock}${v.subgroup ? `_sg${v.subgroup}` : ''}`;

/** Shader header: the subgroups extension when used. */
const enableSubgroups = (v: AttentionVariant) => (v.subgroup ? 'enable subgroups;\n' : '');

/** Entry point signature shared by the three row kernels. */
const entry = (v: AttentionVariant) => `@compute @workgroup_size(${v.wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32${
  v.subgroup ? ', @builtin(subgroup_invocation_id) sgid: u32' : ''}) {
  let N = pu(0u); let BH = pu(1u);
  // (b·h) from y and z, which fold past the 65535 limit; surplus workgroups compute a copy, never store.
  let bhRaw = wid.y + wid.z * nwg.y; let headOk = bhRaw < BH; let bh = min(bhRaw, BH - 1u);
  let qs = pf(2u) * ${LOG2E};
  let rowStart = wid.x * ${v.wg * v.rows}u + lid;`;

/** Stores the vec4 array `src` (times `mul`) as the row of `buf` starting at vec4 index `at`. */
const storeRow = (d4: number, buf: string, at: string, src: string, mul: string) =>
  each(d4, (c) => `${buf}[${at} + ${c}u] = ${src}[${c}]${mul};`);

// ---- forward ----

// Params: [N, BH, scale(f32), qOffset, kOffset, vOffset] (offsets in vec4s)
const FWD_WORDS = 6;

export function attentionForwardKernel(d: number, variant: AttentionVariant): Kernel {
  checkHeadDim(d);
  checkVariant(variant);
  const { wg, rows: R, keyBlock: KB, subgroup: S } = variant;
  return defineKernel(`attention:fwd:${d}:${wg}:${R}:${KB}:${S}`, () => {
    const d4 = d / 4;
    const rows = range(R);
    const keys = range(KB);
    const kRows = keys.map((t) => streamedRow(S, d4, 'k', `kr${t}`, `kBase + min(j0 + ${t}u, N - 1u) * ${d4}u`));
    const vRows = keys.map((t) => streamedRow(S, d4, 'v', `vr${t}`, `vBase + min(j0 + ${t}u, N - 1u) * ${d4}u`));
    const source = `${enableSubgroups(variant)}// attention forward, D=${d}, ${wg} invocations × ${R} rows, ${KB} keys per step, subgroup ${S}
${paramsBlock(FWD_WORDS)}
@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> lse: array<f32>;
@group(0) @binding(3) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> v: array<vec4<f32>>;

${entry(variant)}
  let head = bh * N * ${d4}u;
  let kBase = pu(4u) + head;
  let vBase = pu(5u) + head;
  ${rows.map((r) => `let row${r} = rowStart + ${r * wg}u;
  let qo${r} = pu(3u) + head + min(row${r}, N - 1u) * ${d4}u;
  var q${r}: array<vec4<f32>, ${d4}>;
  var acc${r}: array<vec4<f32>, ${d4}>;
  var m${r} = ${NEG_BIG};
  var l${r} = 0.0;
  ${each(d4, (c) => `q${r}[${c}] = q[qo${r} + ${c}u] * qs;`, '\n  ')}`).join('\n  ')}
  for (var j0 = 0u; j0 < N; j0 += ${KB}u) {
    ${kRows.map((x) => x.loads).join('\n    ')}
    ${rows.map((r) => keys.map((t) => `var s${r}_${t} = 0.0;`).join(' ')).join('\n    ')}
    ${each(d4, (c) => `{
      ${keys.map((t) => `let kc${t} = ${kRows[t].chunk(c)};`).join(' ')}
      ${rows.map((r) => keys.map((t) => `s${r}_${t} += dot(q${r}[${c}], kc${t});`).join(' ')).join('\n      ')}
    }`)}
    ${keys.slice(1).map((t) => rows.map((r) => `s${r}_${t} = select(${NEG_BIG}, s${r}_${t}, j0 + ${t}u < N);`).join(' ')).join('\n    ')}
    ${rows.map((r) => `let mn${r} = max(m${r}, ${keys.map((t) => `s${r}_${t}`).reduce((a, b) => `max(${a}, ${b})`)});
    let corr${r} = exp2(m${r} - mn${r});
    ${keys.map((t) => `let p${r}_${t} = exp2(s${r}_${t} - mn${r});`).join(' ')}
    l${r} = l${r} * corr${r} + ${keys.map((t) => `p${r}_${t}`).join(' + ')};
    m${r} = mn${r};`).join('\n    ')}
    ${vRows.map((x) => x.loads).join('\n    ')}
    ${each(d4, (c) => `{
      ${keys.map((t) => `let vc${t} = ${vRows[t].chunk(c)};`).join(' ')}
      ${rows.map((r) => `acc${r}[${c}] = acc${r}[${c}] * corr${r} + ${keys.map((t) => `p${r}_${t} * vc${t}`).join(' + ')};`).join('\n      ')}
    }`)}
  }
  ${rows.map((r) => `if (headOk && row${r} < N) {
    let inv = 1.0 / l${r};
    let o = head + row${r} * ${d4}u;
    ${storeRow(d4, 'out', 'o', `acc${r}`, ' * inv')}
    lse[bh * N + row${r}] = (m${r} + log2(l${r})) * ${Math.LN2};
  }`).join('\n  ')}
}
`;
    return { name: `attention_fwd_${variantName(d, variant)}`, source, paramWords: FWD_WORDS };
  });
}

export function attentionForwardParams(n: number, bh: number, scale: number, qOffset4: number, kOffset4: number, vOffset4: number): Uint32Array {
  return new Params().u32(n, bh).f32(scale).u32(qOffset4, kOffset4, vOffset4).toArray();
}

/** Workgroups: x over blocks of rows, (y, z) over the B·H heads. */
export function attentionWorkgroups(n: number, bh: number, variant: AttentionVariant): [number, number, number] {
  const z = Math.ceil(bh / MAX_WORKGROUPS_PER_DIM);
  return [Math.ceil(n / (variant.wg * variant.rows)), Math.ceil(bh / z), z];
}

// ---- backward ----

// Params: [rows, outOffset, dOutOffset, lseOffset] (out and dOut offsets in vec4s, lse's in floats)
const STATS_WORDS = 4;
const STATS_WG = 64;

export function attentionRowStatsParams(rows: number, outOffset4: number, dOutOffset4: number, lseOffset: number): Uint32Array {
  return new Params().u32(rows, outOffset4, dOutOffset4, lseOffset).toArray();
}

export function attentionRowStatsWorkgroups(rows: number): [number, number] {
  return grid1d(rows, STATS_WG);
}

/** Packs (lse·log2 e, Di = Σ_d dOut[i, d]·out[i, d]) per row: what the backward kernels read per row. */
export function attentionRowStatsKernel(d: number): Kernel {
  checkHeadDim(d);
  return defineKernel(`attention:stats:${d}`, () => {
    const source = `// attention backward row statistics: (lse·log2 e, rowsum(dOut * out)), D=${d}
${paramsBlock(STATS_WORDS)}
@group(0) @binding(1) var<storage, read_write> stats: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> o: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> dO: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> lse: array<f32>;
${linearIndex(STATS_WG)}
@compute @workgroup_size(${STATS_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(gid, nwg);
  if (i >= pu(0u)) { return; }
  let oo = pu(1u) + i * ${d / 4}u;
  let go = pu(2u) + i * ${d / 4}u;
  var acc = vec4<f32>(0.0);
  for (var c = 0u; c < ${d / 4}u; c++) {
    acc += o[oo + c] * dO[go + c];
  }
  stats[i] = vec2<f32>(lse[pu(3u) + i] * ${LOG2E}, acc.x + acc.y + acc.z + acc.w);
}
`;
    return { name: `attention_stats_d${d}`, source, paramWords: STATS_WORDS };
  });
}

// Params: [N, BH, scale(f32), qOffset, kOffset, vOffset, dOutOffset] (offsets in vec4s)
const BWD_WORDS = 7;

/** Output bindings first (1..outs), then q, k, v, dOut, stats: at most 7 storage buffers. */
const bwdBindings = (outs: string[]) => [...outs, 'q', 'k', 'v', 'dO', 'stats']
  .map((name, i) => `@group(0) @binding(${i + 1}) var<storage, ${i < outs.length ? 'read_write' : 'read'}> ${name}: array<${name === 'stats' ? 'vec2' : 'vec4'}<f32>>;`)
  .join('\n');

/**
 * dQ: each invocation owns query rows (q, dOut, dq in private memory) and loops over the keys:
 * p = exp(s − lse), ds = p·(dOut·v − Di), dq += ds·k; dq·scale at the end.
 */
export function attentionBackwardDqKernel(d: number, variant: AttentionVariant): Kernel {
  checkHeadDim(d);
  checkVariant(variant);
  const { wg, rows: R, keyBlock: KB, subgroup: S } = variant;
  return defineKernel(`attention:bwd_dq:${d}:${wg}:${R}:${KB}:${S}`, () => {
    const d4 = d / 4;
    const rows = range(R);
    const keys = range(KB);
    const kRows = keys.map((t) => streamedRow(S, d4, 'k', `kr${t}`, `kBase + min(j0 + ${t}u, N - 1u) * ${d4}u`));
    const vRows = keys.map((t) => streamedRow(S, d4, 'v', `vr${t}`, `vBase + min(j0 + ${t}u, N - 1u) * ${d4}u`));
    const source = `${enableSubgroups(variant)}// attention backward dQ, D=${d}, ${wg} invocations × ${R} rows, ${KB} keys per step, subgroup ${S}
${paramsBlock(BWD_WORDS)}
${bwdBindings(['dq'])}

${entry(variant)}
  let head = bh * N * ${d4}u;
  let kBase = pu(4u) + head;
  let vBase = pu(5u) + head;
  ${rows.map((r) => `let row${r} = rowStart + ${r * wg}u;
  let rc${r} = min(row${r}, N - 1u);
  let qo${r} = pu(3u) + head + rc${r} * ${d4}u;
  let go${r} = pu(6u) + head + rc${r} * ${d4}u;
  let st${r} = stats[bh * N + rc${r}];
  var q${r}: array<vec4<f32>, ${d4}>;
  var g${r}: array<vec4<f32>, ${d4}>;
  var dq${r}: array<vec4<f32>, ${d4}>;
  ${each(d4, (c) => `q${r}[${c}] = q[qo${r} + ${c}u] * qs; g${r}[${c}] = dO[go${r} + ${c}u];`, '\n  ')}`).join('\n  ')}
  for (var j0 = 0u; j0 < N; j0 += ${KB}u) {
    ${kRows.map((x) => x.loads).join('\n    ')}
    ${vRows.map((x) => x.loads).join('\n    ')}
    ${rows.map((r) => keys.map((t) => `var s${r}_${t} = 0.0; var dp${r}_${t} = 0.0;`).join(' ')).join('\n    ')}
    ${each(d4, (c) => `{
      ${keys.map((t) => `let kc${t} = ${kRows[t].chunk(c)}; let vc${t} = ${vRows[t].chunk(c)};`).join(' ')}
      ${rows.map((r) => keys.map((t) => `s${r}_${t} += dot(q${r}[${c}], kc${t}); dp${r}_${t} += dot(g${r}[${c}], vc${t});`).join(' ')).join('\n      ')}
    }`)}
    ${rows.map((r) => keys.map((t) => `let ds${r}_${t} = select(0.0, exp2(s${r}_${t} - st${r}.x) * (dp${r}_${t} - st${r}.y), j0 + ${t}u < N);`).join(' ')).join('\n    ')}
    ${each(d4, (c) => `{
      ${keys.map((t) => `let kc${t} = ${kRows[t].chunk(c)};`).join(' ')}
      ${rows.map((r) => `dq${r}[${c}] += ${keys.map((t) => `ds${r}_${t} * kc${t}`).join(' + ')};`).join('\n      ')}
    }`)}
  }
  let scale = pf(2u);
  ${rows.map((r) => `if (headOk && row${r} < N) {
    let o = head + row${r} * ${d4}u;
    ${storeRow(d4, 'dq', 'o', `dq${r}`, ' * scale')}
  }`).join('\n  ')}
}
`;
    return { name: `attention_bwd_dq_${variantName(d, variant)}`, source, paramWords: BWD_WORDS };
  });
}

/**
 * dK and dV: each invocation owns key rows (k, v, dk, dv in private memory) and loops over the
 * queries: p = exp(s − lse), dv += p·dOut, ds = p·(dOut·v − Di), dk += ds·q; dk·scale at the end.
 */
export function attentionBackwardDkvKernel(d: number, variant: AttentionVariant): Kernel {
  checkHeadDim(d);
  checkVariant(variant);
  const { wg, rows: R, keyBlock: QB, subgroup: S } = variant;
  return defineKernel(`attention:bwd_dkv:${d}:${wg}:${R}:${QB}:${S}`, () => {
    const d4 = d / 4;
    const rows = range(R);
    const queries = range(QB);
    const qRows = queries.map((t) => streamedRow(S, d4, 'q', `qr${t}`, `qBase + min(i0 + ${t}u, N - 1u) * ${d4}u`));
    const gRows = queries.map((t) => streamedRow(S, d4, 'dO', `gr${t}`, `gBase + min(i0 + ${t}u, N - 1u) * ${d4}u`));
    // With subgroups the (lse, Di) pairs of a block of queries come from one load per lane per S queries.
    const statParts = S > 0 ? Math.ceil(QB / S) : 0;
    const source = `${enableSubgroups(variant)}// attention backward dK dV, D=${d}, ${wg} invocations × ${R} key rows, ${QB} queries per step, subgroup ${S}
${paramsBlock(BWD_WORDS)}
${bwdBindings(['dk', 'dv'])}

${entry(variant)}
  let head = bh * N * ${d4}u;
  let qBase = pu(3u) + head;
  let gBase = pu(6u) + head;
  let statBase = bh * N;
  ${rows.map((r) => `let row${r} = rowStart + ${r * wg}u;
  let rc${r} = min(row${r}, N - 1u);
  let ko${r} = pu(4u) + head + rc${r} * ${d4}u;
  let vo${r} = pu(5u) + head + rc${r} * ${d4}u;
  var k${r}: array<vec4<f32>, ${d4}>;
  var v${r}: array<vec4<f32>, ${d4}>;
  var dk${r}: array<vec4<f32>, ${d4}>;
  var dv${r}: array<vec4<f32>, ${d4}>;
  ${each(d4, (c) => `k${r}[${c}] = k[ko${r} + ${c}u] * qs; v${r}[${c}] = v[vo${r} + ${c}u];`, '\n  ')}`).join('\n  ')}
  for (var i0 = 0u; i0 < N; i0 += ${QB}u) {
    ${statParts
      ? `${range(statParts).map((m) => `let stl${m} = stats[statBase + min(i0 + ${m * S}u + sgid, N - 1u)];`).join(' ')}
    ${queries.map((t) => `let st${t} = subgroupBroadcast(stl${Math.floor(t / S)}, ${t % S}u);`).join(' ')}`
      : queries.map((t) => `let st${t} = stats[statBase + min(i0 + ${t}u, N - 1u)];`).join(' ')}
    ${qRows.map((x) => x.loads).join('\n    ')}
    ${gRows.map((x) => x.loads).join('\n    ')}
    ${rows.map((r) => queries.map((t) => `var s${r}_${t} = 0.0; var dp${r}_${t} = 0.0;`).join(' ')).join('\n    ')}
    ${each(d4, (c) => `{
      ${queries.map((t) => `let qc${t} = ${qRows[t].chunk(c)}; let gc${t} = ${gRows[t].chunk(c)};`).join(' ')}
      ${rows.map((r) => queries.map((t) => `s${r}_${t} += dot(qc${t}, k${r}[${c}]); dp${r}_${t} += dot(gc${t}, v${r}[${c}]);`).join(' ')).join('\n      ')}
    }`)}
    ${rows.map((r) => queries.map((t) => `let p${r}_${t} = select(0.0, exp2(s${r}_${t} - st${t}.x), i0 + ${t}u < N); let ds${r}_${t} = p${r}_${t} * (dp${r}_${t} - st${t}.y);`).join('\n    ')).join('\n    ')}
    ${each(d4, (c) => `{
      ${queries.map((t) => `let qc${t} = ${qRows[t].chunk(c)}; let gc${t} = ${gRows[t].chunk(c)};`).join(' ')}
      ${rows.map((r) => `dv${r}[${c}] += ${queries.map((t) => `p${r}_${t} * gc${t}`).join(' + ')};
      dk${r}[${c}] += ${queries.map((t) => `ds${r}_${t} * qc${t}`).join(' + ')};`).join('\n      ')}
    }`)}
  }
  let scale = pf(2u);
  ${rows.map((r) => `if (headOk && row${r} < N) {
    let o = head + row${r} * ${d4}u;
    ${storeRow(d4, 'dk', 'o', `dk${r}`, ' * scale')}
    ${storeRow(d4, 'dv', 'o', `dv${r}`, '')}
  }`).join('\n  ')}
}
`;
    return { name: `attention_bwd_dkv_${variantName(d, variant)}`, source, paramWords: BWD_WORDS };
  });
}

export function attentionBackwardParams(
  n: number, bh: number, scale: number, offsets4: { q: number; k: number; v: number; dOut: number },
): Uint32Array {
  return new Params().u32(n, bh).f32(scale).u32(offsets4.q, offsets4.k, offsets4.v, offsets4.dOut).toArray();
}

// ---- launchers ----

function checkQkv(op: string, q: Tensor, ...others: Tensor[]): [number, number, number, number] {
  q.assertAlive(op);
  if (q.rank !== 4) throw new ShapeError(`${op}: q must be [B, H, N, D], got ${shapeStr(q.shape)}`);
  for (const t of others) {
    t.assertAlive(op);
    if (t.device !== q.device) throw new ShapeError(`${op}: operands live on different devices`);
    if (t.rank !== 4 || t.shape.some((s, i) => s !== q.shape[i])) {
      throw new ShapeError(`${op}: operand ${shapeStr(t.shape)} does not match q ${shapeStr(q.shape)}`);
    }
  }
  const [b, h, n, d] = q.shape;
  checkHeadDim(d);
  return [b, h, n, d];
}

/**
 * `t` as a contiguous tensor whose offset is a multiple of `align` elements (the kernels read vec4s):
 * a view of `t` when it already is one, else a copy. Registered in `temps` for disposal.
 */
function alignedInput(t: Tensor, temps: Tensor[], align: number): Tensor {
  let c: Tensor;
  if (t.isContiguous && t.offset % align === 0) {
    c = t.contiguous();
  } else {
    c = Tensor.empty(t.device, t.shape);
    writeElementwise('identity', c, [t]);
  }
  temps.push(c);
  return c;
}

/** out = softmax(q·kᵀ·scale)·v and lse = logsumexp(q·kᵀ·scale) per row, for q, k, v [B, H, N, D]. */
export function attentionForward(q: Tensor, k: Tensor, v: Tensor, scale: number, variant?: AttentionVariant): { out: Tensor; lse: Tensor } {
  const [b, h, n, d] = checkQkv('attentionForward', q, k, v);
  const device = q.device;
  const vr = variant ?? defaultVariants(device).forward;
  const out = Tensor.empty(device, [b, h, n, d]);
  const lse = Tensor.empty(device, [b, h, n]);
  if (out.size === 0) return { out, lse };
  const temps: Tensor[] = [];
  try {
    const [qc, kc, vc] = [q, k, v].map((t) => alignedInput(t, temps, 4));
    device.dispatch(
      attentionForwardKernel(d, vr),
      [out.storage.buffer, lse.storage.buffer, qc.storage.buffer, kc.storage.buffer, vc.storage.buffer],
      attentionForwardParams(n, b * h, scale, qc.offset / 4, kc.offset / 4, vc.offset / 4),
      attentionWorkgroups(n, b * h, vr),
    );
  } finally {
    for (const t of temps) t.dispose();
  }
  return { out, lse };
}

/** Gradients of attentionForward's `out` with respect to q, k and v, given dOut and the forward's out and lse. */
export function attentionBackward(
  q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dOut: Tensor, scale: number,
  variants?: Pick<AttentionVariants, 'dq' | 'dkv'>,
): { dq: Tensor; dk: Tensor; dv: Tensor } {
  const [b, h, n, d] = checkQkv('attentionBackward', q, k, v, out, dOut);
  lse.assertAlive('attentionBackward');
  if (lse.rank !== 3 || lse.shape[0] !== b || lse.shape[1] !== h || lse.shape[2] !== n) {
    throw new ShapeError(`attentionBackward: lse ${shapeStr(lse.shape)} does not match [B, H, N] of q ${shapeStr(q.shape)}`);
  }
  const device = q.device;
  const vr = variants ?? defaultVariants(device);
  const rowCount = b * h * n;
  const dq = Tensor.empty(device, [b, h, n, d]);
  const dk = Tensor.empty(device, [b, h, n, d]);
  const dv = Tensor.empty(device, [b, h, n, d]);
  if (rowCount === 0) return { dq, dk, dv };
  const temps: Tensor[] = [];
  try {
    const [qc, kc, vc, oc, gc] = [q, k, v, out, dOut].map((t) => alignedInput(t, temps, 4));
    const lc = alignedInput(lse, temps, 1);
    const stats = Tensor.empty(device, [b, h, n, 2]);
    temps.push(stats);
    device.dispatch(
      attentionRowStatsKernel(d),
      [stats.storage.buffer, oc.storage.buffer, gc.storage.buffer, lc.storage.buffer],
      attentionRowStatsParams(rowCount, oc.offset / 4, gc.offset / 4, lc.offset),
      attentionRowStatsWorkgroups(rowCount),
    );
    const params = attentionBackwardParams(n, b * h, scale, { q: qc.offset / 4, k: kc.offset / 4, v: vc.offset / 4, dOut: gc.offset / 4 });
    const inputs = [qc, kc, vc, gc, stats].map((t) => t.storage.buffer);
    device.dispatch(attentionBackwardDqKernel(d, vr.dq), [dq.storage.buffer, ...inputs], params, attentionWorkgroups(n, b * h, vr.dq));
    device.dispatch(attentionBackwardDkvKernel(d, vr.dkv), [dk.storage.buffer, dv.storage.buffer, ...inputs], params,
      attentionWorkgroups(n, b * h, vr.dkv));
  } finally {
    for (const t of temps) t.dispose();
  }
  return { dq, dk, dv };
}

// ---- CPU references (f64) ----

/** out = softmax(q·kᵀ·scale)·v and lse per row, for flat contiguous [B, H, N, D] inputs. */
export function attentionCpu(
  q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, B: number, H: number, N: number, D: number, scale: number,
): { out: Float64Array; lse: Float64Array } {
  const out = new Float64Array(B * H * N * D);
  const lse = new Float64Array(B * H * N);
  const s = new Float64Array(N);
  for (let bh = 0; bh < B * H; bh++) {
    const base = bh * N * D;
    for (let i = 0; i < N; i++) {
      let m = -Infinity;
      for (let j = 0; j < N; j++) {
        let dot = 0;
        for (let c = 0; c < D; c++) dot += q[base + i * D + c] * k[base + j * D + c];
        s[j] = dot * scale;
        m = Math.max(m, s[j]);
      }
      let l = 0;
      for (let j = 0; j < N; j++) l += (s[j] = Math.exp(s[j] - m));
      for (let j = 0; j < N; j++) {
        const p = s[j] / l;
        for (let c = 0; c < D; c++) out[base + i * D + c] += p * v[base + j * D + c];
      }
      lse[bh * N + i] = m + Math.log(l);
    }
  }
  return { out, lse };
}

/**
 * Gradients of Σ out∘dOut with respect to q, k, v, the textbook way: the full softmax row P, then
 * dP = dOut·vᵀ, dS = P∘(dP − rowsum(P∘dP)).
 */
export function attentionBackwardCpu(
  q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, dOut: ArrayLike<number>,
  B: number, H: number, N: number, D: number, scale: number,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const dq = new Float64Array(B * H * N * D);
  const dk = new Float64Array(B * H * N * D);
  const dv = new Float64Array(B * H * N * D);
  const p = new Float64Array(N);
  const dp = new Float64Array(N);
  for (let bh = 0; bh < B * H; bh++) {
    const base = bh * N * D;
    for (let i = 0; i < N; i++) {
      const qi = base + i * D;
      let m = -Infinity;
      for (let j = 0; j < N; j++) {
        let dot = 0;
        for (let c = 0; c < D; c++) dot += q[qi + c] * k[base + j * D + c];
        p[j] = dot * scale;
        m = Math.max(m, p[j]);
      }
      let l = 0;
      for (let j = 0; j < N; j++) l += (p[j] = Math.exp(p[j] - m));
      let pdp = 0;
      for (let j = 0; j < N; j++) {
        p[j] /= l;
        let dot = 0;
        for (let c = 0; c < D; c++) dot += dOut[qi + c] * v[base + j * D + c];
        dp[j] = dot;
        pdp += p[j] * dot;
      }
      for (let j = 0; j < N; j++) {
        const ds = p[j] * (dp[j] - pdp) * scale;
        const kj = base + j * D;
        for (let c = 0; c < D; c++) {
          dq[qi + c] += ds * k[kj + c];
          dk[kj + c] += ds * q[qi + c];
          dv[kj + c] += p[j] * dOut[qi + c];
        }
      }
    }
  }
  return { dq, dk, dv };
}
