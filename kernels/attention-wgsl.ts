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
 * Where one [B, H, N, D] operand's rows are, in vec4s: row n of head (b, h) starts at
 * offset + b·batch + h·head + n·row. Its D values are contiguous.
 */
export interface HeadLayout {
  offset: number;
  batch: number;
  head: number;
  row: number;
}

/** Params words per operand layout. */
const LAYOUT_WORDS = 4;

/** `opBase(w, bh)`: the first vec4 of head `bh` (= b·H + h) of the operand whose layout is at word w. */
const OP_BASE = `
fn opBase(w: u32, bh: u32) -> u32 { let H = pu(3u); return pu(w) + (bh / H) * pu(w + 1u) + (bh % H) * pu(w + 2u); }`;

function layoutWords(p: Params, ...layouts: HeadLayout[]): Params {
  for (const l of layouts) p.u32(l.offset, l.batch, l.head, l.row);
  return p;
}

/**
 * The vec4 of `buf` at vec4 index `i` as f32: with f16 operands (mixed precision) q, k and v are stored
 * packed two per u32, so a vec4 is a vec2<u32> unpacked with the core unpack2x16float (no shader-f16),
 * and the layouts' vec4 indices stay the same.
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

// Params: [N, BH, scale(f32), H, then the layouts of q, k, v, out (4 words each, in vec4s)]
const FWD_Q = 4;
const FWD_K = FWD_Q + LAYOUT_WORDS;
const FWD_V = FWD_K + LAYOUT_WORDS;
const FWD_OUT = FWD_V + LAYOUT_WORDS;
const FWD_WORDS = FWD_OUT + LAYOUT_WORDS;
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
    const kRows = keys.map((t) => streamedRow(S, d4, 'k', `kr${t}`, `kBase + min(j0 + ${t}u, N - 1u) * kRow`, half));
    const vRows = keys.map((t) => streamedRow(S, d4, 'v', `vr${t}`, `vBase + min(j0 + ${t}u, N - 1u) * vRow`, half));
    const buffers = fwdBuffers(half);
    const source = `${enableSubgroups(variant)}// attention forward, D=${d}, ${wg} invocations × ${R} rows, ${KB} keys per step, subgroup ${S}${half ? ', f16 q k v' : ''}
${paramsBlock(FWD_WORDS)}
${buffers.wgsl}
${OP_BASE}
${half ? HALF4 : ''}

${entry(variant)}
  let kBase = opBase(${FWD_K}u, bh); let kRow = pu(${FWD_K + 3}u);
  let vBase = opBase(${FWD_V}u, bh); let vRow = pu(${FWD_V + 3}u);
  let qBase = opBase(${FWD_Q}u, bh); let qRow = pu(${FWD_Q + 3}u);
  let oBase = opBase(${FWD_OUT}u, bh); let oRow = pu(${FWD_OUT + 3}u);
  ${rows.map((r) => `let row${r} = rowStart + ${r * wg}u;
  let qo${r} = qBase + min(row${r}, N - 1u) * qRow;
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
    let o = oBase + row${r} * oRow;
    ${storeRow(d4, 'out', 'o', `acc${r}`, ' * inv')}
    lse[bh * N + row${r}] = (m${r} + log2(l${r})) * ${Math.LN2};
  }`).join('\n  ')}
}
`;
    return { name: `attention_fwd_${variantName(d, variant)}${halfKey(half)}`, source, paramWords: FWD_WORDS, bindings: buffers.names, halfBindings: half ? ['q', 'k', 'v'] : undefined };
  });
}

/** Params of the forward for B·H = bh heads of `heads` each (layouts in vec4s). */
export function attentionForwardParams(
  n: number, bh: number, heads: number, scale: number, l: { q: HeadLayout; k: HeadLayout; v: HeadLayout; out: HeadLayout },
): Uint32Array {
  return layoutWords(new Params().u32(n, bh).f32(scale).u32(heads), l.q, l.k, l.v, l.out).toArray();
}

/** Workgroups: x over blocks of rows, (y, z) over the B·H heads. */
export function attentionWorkgroups(n: number, bh: number, variant: AttentionVariant): [number, number, number] {
  const z = Math.ceil(bh / MAX_WORKGROUPS_PER_DIM);
  return [Math.ceil(n / (variant.wg * variant.rows)), Math.ceil(bh / z), z];
}

// ---- backward ----

// Params: [rows (= B·H·N), N, lseOffset (floats), H, then the layouts of out and dOut]
const STATS_O = 4;
const STATS_G = STATS_O + LAYOUT_WORDS;
const STATS_WORDS = STATS_G + LAYOUT_WORDS;
const STATS_WG = 64;

export function attentionRowStatsParams(rows: number, n: number, heads: number, lseOffset: number, out: HeadLayout, dOut: HeadLayout): Uint32Array {
  return layoutWords(new Params().u32(rows, n, lseOffset, heads), out, dOut).toArray();
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
    helpers: OP_BASE,
    body: `let N = pu(1u); let bh = i / N; let n = i % N;
  let oo = opBase(${STATS_O}u, bh) + n * pu(${STATS_O + 3}u);
  let go = opBase(${STATS_G}u, bh) + n * pu(${STATS_G + 3}u);
  var acc = vec4<f32>(0.0);
  for (var c = 0u; c < ${d / 4}u; c++) {
    acc += o[oo + c] * dO[go + c];
  }
  stats[i] = vec2<f32>(lse[pu(2u) + i] * ${LOG2E}, acc.x + acc.y + acc.z + acc.w);`,
  });
}

// Params: [N, BH, scale(f32), H, then the layouts of q, k, v, dOut and the outputs (dq; or dk, dv)]
const BWD_Q = 4;
const BWD_K = BWD_Q + LAYOUT_WORDS;
const BWD_V = BWD_K + LAYOUT_WORDS;
const BWD_G = BWD_V + LAYOUT_WORDS;
const BWD_OUT1 = BWD_G + LAYOUT_WORDS;
const BWD_OUT2 = BWD_OUT1 + LAYOUT_WORDS;
const BWD_WORDS = BWD_OUT2 + LAYOUT_WORDS;

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
    const kRows = keys.map((t) => streamedRow(S, d4, 'k', `kr${t}`, `kBase + min(j0 + ${t}u, N - 1u) * kRow`, half));
    const vRows = keys.map((t) => streamedRow(S, d4, 'v', `vr${t}`, `vBase + min(j0 + ${t}u, N - 1u) * vRow`, half));
    const buffers = bwdBuffers(['dq'], half);
    const source = `${enableSubgroups(variant)}// attention backward dQ, D=${d}, ${wg} invocations × ${R} rows, ${KB} keys per step, subgroup ${S}${half ? ', f16 q k v' : ''}
${paramsBlock(BWD_WORDS)}
${buffers.wgsl}
${OP_BASE}
${half ? HALF4 : ''}

${entry(variant)}
  let kBase = opBase(${BWD_K}u, bh); let kRow = pu(${BWD_K + 3}u);
  let vBase = opBase(${BWD_V}u, bh); let vRow = pu(${BWD_V + 3}u);
  let qBase = opBase(${BWD_Q}u, bh); let qRow = pu(${BWD_Q + 3}u);
  let gBase = opBase(${BWD_G}u, bh); let gRow = pu(${BWD_G + 3}u);
  let dqBase = opBase(${BWD_OUT1}u, bh); let dqRow = pu(${BWD_OUT1 + 3}u);
  ${rows.map((r) => `let row${r} = rowStart + ${r * wg}u;
  let rc${r} = min(row${r}, N - 1u);
  let qo${r} = qBase + rc${r} * qRow;
  let go${r} = gBase + rc${r} * gRow;
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
    let o = dqBase + row${r} * dqRow;
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
 * dk and dv are written through one binding (`dkv`, with a layout each): WebGPU refuses two writable
 * bindings of one buffer, and the fused-qkv backward writes both into one gradient buffer.
 */
export function attentionBackwardDkvKernel(d: number, variant: AttentionVariant, half = false): Kernel {
  checkHeadDim(d);
  checkVariant(variant);
  const { wg, rows: R, keyBlock: QB, subgroup: S } = variant;
  return defineKernel(`attention:bwd_dkv:${d}:${wg}:${R}:${QB}:${S}${halfKey(half)}`, () => {
    const d4 = d / 4;
    const rows = range(R);
    const queries = range(QB);
    const qRows = queries.map((t) => streamedRow(S, d4, 'q', `qr${t}`, `qBase + min(i0 + ${t}u, N - 1u) * qRow`, half));
    const gRows = queries.map((t) => streamedRow(S, d4, 'dO', `gr${t}`, `gBase + min(i0 + ${t}u, N - 1u) * gRow`));
    // With subgroups the (lse, Di) pairs of a block of queries come from one load per lane per S queries.
    const statParts = S > 0 ? Math.ceil(QB / S) : 0;
    const buffers = bwdBuffers(['dkv'], half);
    const source = `${enableSubgroups(variant)}// attention backward dK dV, D=${d}, ${wg} invocations × ${R} key rows, ${QB} queries per step, subgroup ${S}${half ? ', f16 q k v' : ''}
${paramsBlock(BWD_WORDS)}
${buffers.wgsl}
${OP_BASE}
${half ? HALF4 : ''}

${entry(variant)}
  let qBase = opBase(${BWD_Q}u, bh); let qRow = pu(${BWD_Q + 3}u);
  let gBase = opBase(${BWD_G}u, bh); let gRow = pu(${BWD_G + 3}u);
  let kBase = opBase(${BWD_K}u, bh); let kRow = pu(${BWD_K + 3}u);
  let vBase = opBase(${BWD_V}u, bh); let vRow = pu(${BWD_V + 3}u);
  let dkBase = opBase(${BWD_OUT1}u, bh); let dkRow = pu(${BWD_OUT1 + 3}u);
  let dvBase = opBase(${BWD_OUT2}u, bh); let dvRow = pu(${BWD_OUT2 + 3}u);
  let statBase = bh * N;
  ${rows.map((r) => `let row${r} = rowStart + ${r * wg}u;
  let rc${r} = min(row${r}, N - 1u);
  let ko${r} = kBase + rc${r} * kRow;
  let vo${r} = vBase + rc${r} * vRow;
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
    let ok = dkBase + row${r} * dkRow;
    let ov = dvBase + row${r} * dvRow;
    ${storeRow(d4, 'dkv', 'ok', `dk${r}`, ' * scale')}
    ${storeRow(d4, 'dkv', 'ov', `dv${r}`, '')}
  }`).join('\n  ')}
}
`;
    return { name: `attention_bwd_dkv_${variantName(d, variant)}${halfKey(half)}`, source, paramWords: BWD_WORDS, bindings: buffers.names, halfBindings: half ? ['q', 'k', 'v'] : undefined };
  });
}

/**
 * Params of both backward kernels: the inputs' layouts, then the outputs' (dq for the dQ kernel; dk and
 * dv for the dK·dV kernel; `out2` is ignored by the dQ kernel).
 */
export function attentionBackwardParams(
  n: number, bh: number, heads: number, scale: number,
  l: { q: HeadLayout; k: HeadLayout; v: HeadLayout; dOut: HeadLayout; out1: HeadLayout; out2: HeadLayout },
): Uint32Array {
  return layoutWords(new Params().u32(n, bh).f32(scale).u32(heads), l.q, l.k, l.v, l.dOut, l.out1, l.out2).toArray();
}
