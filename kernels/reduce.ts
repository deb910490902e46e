// Reductions (sum, max, min) over any set of axes of a strided tensor.
//
// The launcher splits the input's axes into kept axes (one output element each) and reduced axes.
// Two variants: one invocation per output when rows are short or outputs many; one workgroup per
// output (strided partial sums, then a tree in workgroup memory, or on lavapipe one subgroup and
// shuffles: defaultRowReduce in kernels/wgsl.ts) when rows are long. The tree also
// keeps f32 sums of long rows accurate (pairwise rather than sequential accumulation). A third kernel
// takes the common case of leading axes reduced and contiguous trailing ones kept (a bias gradient):
// vec4 columns, 64 rows per invocation, then the partial rows the same way (reduceColumnsKernel).

import { MAX_RANK, collapseDims, sizeOf } from '../engine/shape.js';
import { Tensor } from '../engine/tensor.js';
import { Params, defaultRowReduce, defineKernel, grid1d, launch, linearIndex, paramsBlock, rowReduceId, storage, workgroupReduce, type Kernel, type RowReduce } from './wgsl.js';

export type ReduceOpName = 'sum' | 'max' | 'min';

const P_INIT_SLOT = 4; // params word holding the identity element (see the layout below)

const REDUCE_OPS: Record<ReduceOpName, { init: string; combine: (a: string, b: string) => string; cpuInit: number; cpu: (a: number, b: number) => number }> = {
  sum: { init: '0.0', combine: (a, b) => `${a} + ${b}`, cpuInit: 0, cpu: (a, b) => a + b },
  // ±inf come from the params block: WGSL has no infinity literal and rejects inf in constant expressions.
  max: { init: `pf(${P_INIT_SLOT}u)`, combine: (a, b) => `max(${a}, ${b})`, cpuInit: -Infinity, cpu: (a, b) => Math.max(a, b) },
  min: { init: `pf(${P_INIT_SLOT}u)`, combine: (a, b) => `min(${a}, ${b})`, cpuInit: Infinity, cpu: (a, b) => Math.min(a, b) },
};

const WG_THREAD = 128;

// Params: [nOut, R, inOffset, scale(f32), init(f32), chunk, nChunks, keptShape[8], keptStrides[8], redShape[8], redStrides[8]]
const P_NOUT = 0;
const P_R = 1;
const P_OFFSET = 2;
const P_SCALE = 3;
const P_INIT = P_INIT_SLOT;
const P_CHUNK = 5;
const P_NCHUNKS = 6;
const P_KSHAPE = 7;
const P_KSTRIDES = P_KSHAPE + MAX_RANK;
const P_RSHAPE = P_KSTRIDES + MAX_RANK;
const P_RSTRIDES = P_RSHAPE + MAX_RANK;
const PARAM_WORDS = P_RSTRIDES + MAX_RANK;

export interface ReducePlan {
  keptShape: number[];
  keptStrides: number[];
  redShape: number[];
  redStrides: number[];
}

/** True when the per-workgroup variant suits `nOut` rows of length `r`. */
export function reduceUsesWorkgroup(nOut: number, r: number): boolean {
  return r >= 512 || (r >= 64 && nOut < 512);
}

function offsetCode(prefix: string, idx: string, rank: number, shapeAt: number, stridesAt: number): string {
  if (rank === 0) return `let ${prefix} = 0u;`;
  if (rank === 1) return `let ${prefix} = ${idx} * pu(${stridesAt}u);`;
  const lines = [`var ${prefix} = 0u;`, `{ var rem = ${idx};`];
  for (let d = rank - 1; d >= 0; d--) {
    lines.push(`  { let dim = pu(${shapeAt + d}u); ${prefix} += (rem % dim) * pu(${stridesAt + d}u); rem = rem / dim; }`);
  }
  lines.push('}');
  return lines.join('\n  ');
}

/**
 * `row`: the per-workgroup variant's reduction (TREE_ROW_REDUCE, or one subgroup), null for one
 * invocation per output.
 */
export function reduceKernel(op: ReduceOpName, keptRank: number, redRank: number, row: RowReduce | null): Kernel {
  return defineKernel(`reduce:${op}:${keptRank}:${redRank}:${row ? rowReduceId(row) : 'thread'}`, () => {
    const r = REDUCE_OPS[op];
    const wg = row ? row.wg : WG_THREAD;
    const buffers = storage({ out: 'read_write', inp: 'read' });
    const main = row
      ? `${workgroupReduce('combineAll', 'f32', wg, r.combine, '', row.subgroup)}
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  // Workgroup w reduces chunk (w % nChunks) of row (w / nChunks); out has nOut × nChunks entries.
  let w = wid.x + wid.y * nwg.x;
  let nChunks = pu(${P_NCHUNKS}u);
  let o = w / nChunks;
  let chunk = w % nChunks;
  let nOut = pu(${P_NOUT}u);
  let valid = o < nOut;
  ${offsetCode('base', 'min(o, nOut - 1u)', keptRank, P_KSHAPE, P_KSTRIDES)}
  var acc = ${r.init};
  let R = min(pu(${P_R}u), (chunk + 1u) * pu(${P_CHUNK}u));
  if (valid) {
    for (var j = chunk * pu(${P_CHUNK}u) + lid; j < R; j += ${wg}u) {
      ${offsetCode('roff', 'j', redRank, P_RSHAPE, P_RSTRIDES)}
      acc = ${r.combine('acc', 'inp[pu(' + P_OFFSET + 'u) + base + roff]')};
    }
  }
  let total = combineAll(lid, acc);
  if (valid && lid == 0u) { out[w] = total * pf(${P_SCALE}u); }
}`
      : `@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = linearIndex(gid, nwg);
  if (o >= pu(${P_NOUT}u)) { return; }
  ${offsetCode('base', 'o', keptRank, P_KSHAPE, P_KSTRIDES)}
  var acc = ${r.init};
  let R = pu(${P_R}u);
  for (var j = 0u; j < R; j++) {
    ${offsetCode('roff', 'j', redRank, P_RSHAPE, P_RSTRIDES)}
    acc = ${r.combine('acc', 'inp[pu(' + P_OFFSET + 'u) + base + roff]')};
  }
  out[o] = acc * pf(${P_SCALE}u);
}`;
    const source = `${row?.subgroup ? 'enable subgroups;\n' : ''}// reduce ${op} (kept rank ${keptRank}, reduced rank ${redRank})
${paramsBlock(PARAM_WORDS)}
${buffers.wgsl}
${linearIndex(wg)}
${main}
`;
    return { name: `reduce_${op}`, source, paramWords: PARAM_WORDS, bindings: buffers.names };
  });
}

/** Rows per invocation of the column kernel; longer columns leave partial results for another pass. */
export const COLUMN_ROWS = 64;
const COLUMN_WG = 64;

/**
 * Column reductions with vec4 loads: `inp` viewed as [R, C] (columns contiguous, rows `rowStride`
 * apart, C, rowStride and the offset multiples of 4), reduced over R into [C]. Invocation (c4, chunk)
 * combines rows chunk·COLUMN_ROWS.. of vec4 column c4 into row `chunk` of out [nChunks, C]. On lavapipe
 * a vec4 load costs about what a scalar one does, and a workgroup per output reads its column one
 * scalar per lane (a bias gradient: ~2 GB/s). Params: [C4, R, offset4, rowStride4, scale, init].
 */
export function reduceColumnsKernel(op: ReduceOpName): Kernel {
  return defineKernel(`reduce:${op}:cols4`, () => {
    const r = REDUCE_OPS[op];
    const buffers = storage({ out: ['read_write', 'vec4<f32>'], inp: ['read', 'vec4<f32>'] });
    const source = `// reduce ${op} over the rows of [R, C], one vec4 column and ${COLUMN_ROWS} rows per invocation
${paramsBlock(6)}
${buffers.wgsl}
@compute @workgroup_size(${COLUMN_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let C4 = pu(0u);
  let c4 = gid.x; let chunk = gid.y;
  if (c4 >= C4) { return; }
  let r1 = min(pu(1u), (chunk + 1u) * ${COLUMN_ROWS}u);
  var acc = vec4<f32>(pf(5u));
  for (var row = chunk * ${COLUMN_ROWS}u; row < r1; row++) {
    acc = ${r.combine('acc', 'inp[pu(2u) + row * pu(3u) + c4]')};
  }
  out[chunk * C4 + c4] = acc * pf(4u);
}
`;
    return { name: `reduce_${op}_cols4`, source, paramWords: 6, bindings: buffers.names };
  });
}

/** `x` reduced over its rows as [R, C] (see reduceColumnsKernel), times `scale`, into `out` [.., C]. */
function reduceColumns(op: ReduceOpName, x: Tensor, out: Tensor, rows: number, cols: number, rowStride: number, scale: number): void {
  const chunks = Math.ceil(rows / COLUMN_ROWS);
  const target = chunks === 1 ? out : Tensor.empty(x.device, [chunks, cols]);
  const params = new Params().u32(cols / 4, rows, x.offset / 4, rowStride / 4).f32(chunks === 1 ? scale : 1, REDUCE_OPS[op].cpuInit).toArray();
  launch(reduceColumnsKernel(op), { out: target, inp: x }, params, [Math.ceil(cols / 4 / COLUMN_WG), chunks, 1], { bytes: 4 * (rows * cols + chunks * cols) });
  if (chunks === 1) return;
  reduceColumns(op, target, out, chunks, cols, cols, scale);
  target.dispose();
}

/**
 * Rows longer than this are reduced in two passes (chunks of the row, then the partial results): more
 * workgroups to spread over the GPU, and short f32 accumulation chains.
 */
export const REDUCE_CHUNK = 4096;

export function reduceParams(
  op: ReduceOpName, nOut: number, r: number, offset: number, scale: number, plan: ReducePlan, chunk = r, nChunks = 1,
): Uint32Array {
  const p = new Params().u32(nOut, r, offset).f32(scale, REDUCE_OPS[op].cpuInit).u32(Math.max(1, chunk), nChunks);
  for (const xs of [plan.keptShape, plan.keptStrides, plan.redShape, plan.redStrides]) {
    for (let d = 0; d < MAX_RANK; d++) p.u32(xs[d] ?? 0);
  }
  return p.toArray();
}

export function reduceWorkgroups(nOut: number, perWorkgroup: boolean, nChunks = 1): [number, number] {
  return perWorkgroup ? grid1d(nOut * nChunks, 1) : grid1d(nOut, WG_THREAD);
}

/**
 * Reduces `x` over the (sorted, distinct) axes `axes` into a new contiguous tensor of `outShape`
 * (the kept axes, with or without size-1 reduced axes), times `scale` (1/R for a mean).
 */
export function reduceAxes(op: ReduceOpName, x: Tensor, axes: readonly number[], outShape: readonly number[], scale: number): Tensor {
  const kept = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const r = sizeOf(axes.map((i) => x.shape[i]));
  const nOut = sizeOf(outShape);
  const out = Tensor.empty(x.device, outShape);
  if (nOut === 0) return out;
  const k = collapseDims(kept.map((i) => x.shape[i]), [kept.map((i) => x.strides[i])]);
  const rd = collapseDims(axes.map((i) => x.shape[i]), [axes.map((i) => x.strides[i])]);
  const plan = { keptShape: k.shape, keptStrides: k.strides[0], redShape: rd.shape, redStrides: rd.strides[0] };
  // Leading axes reduced, trailing ones kept and contiguous (a bias gradient): vec4 column sums.
  const [rowStride] = rd.strides[0];
  if (k.shape.length === 1 && k.strides[0][0] === 1 && rd.shape.length === 1 && nOut % 4 === 0 && rowStride % 4 === 0 && x.offset % 4 === 0 && r > 0) {
    reduceColumns(op, x, out, r, nOut, rowStride, scale);
    return out;
  }
  const perWorkgroup = reduceUsesWorkgroup(nOut, r);
  const row = defaultRowReduce(x.device);
  const kernel = reduceKernel(op, k.shape.length, rd.shape.length, perWorkgroup ? row : null);
  const nChunks = perWorkgroup ? Math.ceil(r / REDUCE_CHUNK) : 1;
  if (nChunks <= 1) {
    launch(kernel, { out, inp: x }, reduceParams(op, nOut, r, x.offset, scale, plan), reduceWorkgroups(nOut, perWorkgroup), { bytes: 4 * (nOut * r + nOut) });
    return out;
  }
  // Two passes: chunks of each row into [nOut, nChunks] partials, then those rows.
  const partial = Tensor.empty(x.device, [nOut, nChunks]);
  launch(kernel, { out: partial, inp: x }, reduceParams(op, nOut, r, x.offset, 1, plan, REDUCE_CHUNK, nChunks), reduceWorkgroups(nOut, true, nChunks), { bytes: 4 * (nOut * r + nOut * nChunks) });
  const second = { keptShape: [nOut], keptStrides: [nChunks], redShape: [nChunks], redStrides: [1] };
  const secondWg = reduceUsesWorkgroup(nOut, nChunks);
  launch(
    reduceKernel(op, 1, 1, secondWg ? row : null),
    { out, inp: partial },
    reduceParams(op, nOut, nChunks, 0, scale, second),
    reduceWorkgroups(nOut, secondWg),
    { bytes: 4 * (nOut * nChunks + nOut) },
  );
  partial.dispose();
  return out;
}

/** CPU reference: reduces a contiguous f64 array of `shape` over `axes` (output keeps size-1 axes). */
export function reduceCpu(op: ReduceOpName, data: ArrayLike<number>, shape: readonly number[], axes: readonly number[]): Float64Array {
  const r = REDUCE_OPS[op];
  const outShape = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const outSize = outShape.reduce((a, b) => a * b, 1);
  const out = new Float64Array(outSize).fill(r.cpuInit);
  const rank = shape.length;
  const idx = new Array<number>(rank).fill(0);
  for (let i = 0; i < data.length; i++) {
    let rem = i;
    for (let d = rank - 1; d >= 0; d--) {
      idx[d] = rem % shape[d];
      rem = Math.floor(rem / shape[d]);
    }
    let o = 0;
    for (let d = 0; d < rank; d++) o = o * outShape[d] + (axes.includes(d) ? 0 : idx[d]);
    out[o] = r.cpu(out[o], data[i]);
  }
  return out;
}
