// WGSL generators of the fused attention kernels (forward, backward row statistics, dQ, dK·dV), one
// source per head dim and variant (kernels/attention-plan.ts). How they work and why they look as they
// do: kernels/attention.ts.

import { Params, defineKernel, grid1d, paramsBlock, pointwiseKernel, storage, MAX_WORKGROUPS_PER_DIM, type Kernel, type StorageSpec } from './wgsl.js';
import { checkHeadDim, checkVariant, type AttentionVariant } from './attention-plan.js';

const LOG2E = Math.LOG2E;
/** Masks scores of keys past N: finite, so (−BIG) − (−BIG) never makes a NaN. */
const NEG_BIG = '-1.0e30';

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const each = (n: number, f: (i: number) => string, sep = '\n    ') => range(n).map(f).join(sep);

/**
 * A row of `d4` vec4s of `buf` starting at vec4 index `at`, read by every invocation of a subgroup:
 * `loads` fetches it (one vec4 per lane per S chunks, with subgroups) and `chunk(c)` is its c-th vec4.
 */
function streamedRow(subgroup: number, d4: number, buf: string, name: string, at: string, half = false): { loads: string; chunk: (c: number) => string } {
  if (!subgroup) return { loads: `let ${name} = ${at};`, chunk: (c) => ld4(half, buf, `${name} + ${c}u`) };
  const parts = Math.ceil(d4 / subgroup);
  return {
    loads: range(parts).map((m) => `let ${name}_${m} = ${ld4(half, buf, `${at} + min(${m * subgroup}u + sgid, ${d4 - 1}u)`)};`).join(' '),
    chunk: (c) => `subgroupBroadcast(${name}_${Math.floor(c / subgroup)}, ${c % subgroup}u)`,
  };
}

/**
 * The vec4 of `buf` at vec4 index `i` as f32: with f16 operands (mixed precision) q, k and v are stored
 * packed two per u32, so a vec4 is a vec2<u32> unpacked with the core unpack2x16float (no shader-f16).
 */
const ld4 = (half: boolean, buf: string, i: string) => (half ? `half4(${buf}[${i}])` : `${buf}[${i}]`);
const HALF4 = 'fn half4(w: vec2<u32>) -> vec4<f32> { return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)); }';
/** q, k, v: f32 vec4s, or (half) f16 packed as vec2<u32>. */
const qkvType = (half: boolean) => (half ? 'vec2<u32>' : 'vec4<f32>');
const halfKey = (half: boolean) => (half ? ':f16' : '');

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
const fwdBuffers = (half: boolean) => storage({ out: ['read_write', 'vec4<f32>'], lse: 'read_write', q: ['read', qkvType(half)], k: ['read', qkvType(half)], v: ['read', qkvType(half)] });

/** `half`: q, k, v are f16 tensors (mixed precision); the math and the outputs stay f32. */
export function attentionForwardKernel(d: number, variant: AttentionVariant, half = false): Kernel {
  checkHeadDim(d);
  checkVariant(variant);
  const { wg, rows: R, keyBlock: KB, subgroup: S } = variant;
  return defineKernel(`attention:fwd:${d}:${wg}:${R}:${KB}:${S}${halfKey(half)}`, () => {
    const d4 = d / 4;
    const rows = range(R);
    const keys = range(KB);
    const kRows = keys.map((t) => streamedRow(S, d4, 'k', `kr${t}`, `kBase + min(j0 + ${t}u, N - 1u) * ${d4}u`, half));
    const vRows = keys.map((t) => streamedRow(S, d4, 'v', `vr${t}`, `vBase + min(j0 + ${t}u, N - 1u) * ${d4}u`, half));
    const buffers = fwdBuffers(half);
    const source = `${enableSubgroups(variant)}// attention forward, D=${d}, ${wg} invocations × ${R} rows, ${KB} keys per step, subgroup ${S}${half ? ', f16 q k v' : ''}
${paramsBlock(FWD_WORDS)}
${buffers.wgsl}
${half ? HALF4 : ''}

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
  ${each(d4, (c) => `q${r}[${c}] = ${ld4(half, 'q', `qo${r} + ${c}u`)} * qs;`, '\n  ')}`).join('\n  ')}
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
    return { name: `attention_fwd_${variantName(d, variant)}${halfKey(half)}`, source, paramWords: FWD_WORDS, bindings: buffers.names, halfBindings: half ? ['q', 'k', 'v'] : undefined };
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
  return pointwiseKernel({
    key: `attention:stats:${d}`,
    name: `attention_stats_d${d}`,
    comment: `attention backward row statistics: (lse·log2 e, rowsum(dOut * out)), D=${d}`,
    paramWords: STATS_WORDS,
    buffers: { stats: ['read_write', 'vec2<f32>'], o: ['read', 'vec4<f32>'], dO: ['read', 'vec4<f32>'], lse: 'read' },
    wg: STATS_WG,
    body: `let oo = pu(1u) + i * ${d / 4}u;
  let go = pu(2u) + i * ${d / 4}u;
  var acc = vec4<f32>(0.0);
  for (var c = 0u; c < ${d / 4}u; c++) {
    acc += o[oo + c] * dO[go + c];
  }
  stats[i] = vec2<f32>(lse[pu(3u) + i] * ${LOG2E}, acc.x + acc.y + acc.z + acc.w);`,
  });
}

// Params: [N, BH, scale(f32), qOffset, kOffset, vOffset, dOutOffset] (offsets in vec4s)
const BWD_WORDS = 7;

/** Output buffers first, then q, k, v, dOut, stats: at most 7 storage buffers. */
const bwdBuffers = (outs: string[], half: boolean) => {
  const spec: StorageSpec = {};
  for (const name of outs) spec[name] = ['read_write', 'vec4<f32>'];
  for (const name of ['q', 'k', 'v']) spec[name] = ['read', qkvType(half)];
  spec.dO = ['read', 'vec4<f32>'];
  spec.stats = ['read', 'vec2<f32>'];
  return storage(spec);
};

/**
 * dQ: each invocation owns query rows (q, dOut, dq in private memory) and loops over the keys:
 * p = exp(s − lse), ds = p·(dOut·v − Di), dq += ds·k; dq·scale at the end.
 */
export function attentionBackwardDqKernel(d: number, variant: AttentionVariant, half = false): Kernel {
  checkHeadDim(d);
  checkVariant(variant);
  const { wg, rows: R, keyBlock: KB, subgroup: S } = variant;
  return defineKernel(`attention:bwd_dq:${d}:${wg}:${R}:${KB}:${S}${halfKey(half)}`, () => {
    const d4 = d / 4;
    const rows = range(R);
    const keys = range(KB);
    const kRows = keys.map((t) => streamedRow(S, d4, 'k', `kr${t}`, `kBase + min(j0 + ${t}u, N - 1u) * ${d4}u`, half));
    const vRows = keys.map((t) => streamedRow(S, d4, 'v', `vr${t}`, `vBase + min(j0 + ${t}u, N - 1u) * ${d4}u`, half));
    const buffers = bwdBuffers(['dq'], half);
    const source = `${enableSubgroups(variant)}// attention backward dQ, D=${d}, ${wg} invocations × ${R} rows, ${KB} keys per step, subgroup ${S}${half ? ', f16 q k v' : ''}
${paramsBlock(BWD_WORDS)}
${buffers.wgsl}
${half ? HALF4 : ''}

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
  ${each(d4, (c) => `q${r}[${c}] = ${ld4(half, 'q', `qo${r} + ${c}u`)} * qs; g${r}[${c}] = dO[go${r} + ${c}u];`, '\n  ')}`).join('\n  ')}
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
    return { name: `attention_bwd_dq_${variantName(d, variant)}${halfKey(half)}`, source, paramWords: BWD_WORDS, bindings: buffers.names, halfBindings: half ? ['q', 'k', 'v'] : undefined };
  });
}

/**
 * dK and dV: each invocation owns key rows (k, v, dk, dv in private memory) and loops over the
 * queries: p = exp(s − lse), dv += p·dOut, ds = p·(dOut·v − Di), dk += ds·q; dk·scale at the end.
 */
export function attentionBackwardDkvKernel(d: number, variant: AttentionVariant, half = false): Kernel {
  checkHeadDim(d);
  checkVariant(variant);
  const { wg, rows: R, keyBlock: QB, subgroup: S } = variant;
  return defineKernel(`attention:bwd_dkv:${d}:${wg}:${R}:${QB}:${S}${halfKey(half)}`, () => {
    const d4 = d / 4;
    const rows = range(R);
    const queries = range(QB);
    const qRows = queries.map((t) => streamedRow(S, d4, 'q', `qr${t}`, `qBase + min(i0 + ${t}u, N - 1u) * ${d4}u`, half));
    const gRows = queries.map((t) => streamedRow(S, d4, 'dO', `gr${t}`, `gBase + min(i0 + ${t}u, N - 1u) * ${d4}u`));
    // With subgroups the (lse, Di) pairs of a block of queries come from one load per lane per S queries.
    const statParts = S > 0 ? Math.ceil(QB / S) : 0;
    const buffers = bwdBuffers(['dk', 'dv'], half);
    const source = `${enableSubgroups(variant)}// attention backward dK dV, D=${d}, ${wg} invocations × ${R} key rows, ${QB} queries per step, subgroup ${S}${half ? ', f16 q k v' : ''}
${paramsBlock(BWD_WORDS)}
${buffers.wgsl}
${half ? HALF4 : ''}

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
  ${each(d4, (c) => `k${r}[${c}] = ${ld4(half, 'k', `ko${r} + ${c}u`)} * qs; v${r}[${c}] = ${ld4(half, 'v', `vo${r} + ${c}u`)};`, '\n  ')}`).join('\n  ')}
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
    return { name: `attention_bwd_dkv_${variantName(d, variant)}${halfKey(half)}`, source, paramWords: BWD_WORDS, bindings: buffers.names, halfBindings: half ? ['q', 'k', 'v'] : undefined };
  });
}

export function attentionBackwardParams(
  n: number, bh: number, scale: number, offsets4: { q: number; k: number; v: number; dOut: number },
): Uint32Array {
  return new Params().u32(n, bh).f32(scale).u32(offsets4.q, offsets4.k, offsets4.v, offsets4.dOut).toArray();
}
