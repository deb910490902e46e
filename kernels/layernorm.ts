// LayerNorm over the last axis: y = (x - mean) · rstd · γ + β, with rstd = 1/sqrt(var + eps).
//
// Forward: one workgroup per row (64 invocations and a tree in workgroup memory, or on lavapipe one
// subgroup and shuffles: defaultRowReduce in kernels/wgsl.ts; kernels/layernorm-tune.ts may choose
// another); saves mean and rstd per row for the backward. Backward: dx per row from the saved
// statistics; dγ and dβ are column sums over rows, one invocation per column (consecutive invocations
// read consecutive columns). When D is a multiple of 4, all three read and write vec4s.

import type { Device } from '../engine/device.js';
import { Tensor } from '../engine/tensor.js';
import { contiguousInput } from './elementwise.js';
import {
  Params, TREE_ROW_REDUCE, defaultRowReduce, grid1d, launch, pointwiseKernel, rowKernel, rowReduceId, rowWorkgroups, workgroupReduce,
  type Kernel, type RowReduce,
} from './wgsl.js';

const rowReduce = (v: RowReduce) => workgroupReduce('rowSum2', 'vec2<f32>', v.wg, (a, b) => `${a} + ${b}`, '', v.subgroup);

/** Invocations per row a tree reduction may use (a power of two); see defaultRowReduce for the default. */
export const LAYERNORM_ROW_WGS = [32, 64, 128, 256] as const;

/** One layerNorm row-kernel launch as the autotuner sees it (kernels/layernorm-tune.ts). */
export interface LayerNormCall {
  kernel: 'forward' | 'dx';
  rows: number;
  d: number;
}

/** Set by kernels/layernorm-tune.ts: the row reduction for a launch, or null for defaultRowReduce. */
export const layerNormTuning: { choose: ((device: Device, call: LayerNormCall) => RowReduce | null) | null } = { choose: null };

const rowWg = (device: Device, call: LayerNormCall) => layerNormTuning.choose?.(device, call) ?? defaultRowReduce(device);

/**
 * With `vec4` (D a multiple of 4, every operand from element 0) the row kernels and the dγ/dβ kernel
 * read and write vec4s: on lavapipe a vec4 load costs about what a scalar one does (bench/RESULTS.md).
 * The row sums then add 4-wide partial sums, in another order than the scalar kernels.
 */
const V4 = (vec4: boolean) => (vec4 ? ':v4' : '');
const vecBuf = (vec4: boolean, access: 'read' | 'read_write'): ['read' | 'read_write', string] => [access, vec4 ? 'vec4<f32>' : 'f32'];
/** WGSL: the sum of a row element (f32, or the 4 of a vec4). */
const hsum = (vec4: boolean, e: string) => (vec4 ? `dot(${e}, vec4<f32>(1.0))` : e);

// Params: [rows, D, eps(f32)]
export function layerNormForwardKernel(v: RowReduce = TREE_ROW_REDUCE, vec4 = false): Kernel {
  const wg = v.wg;
  const b = (access: 'read' | 'read_write') => vecBuf(vec4, access);
  const [n, at] = vec4 ? ['D / 4u', 'base / 4u'] : ['D', 'base'];
  return rowKernel({
    key: `layernorm:fwd:${rowReduceId(v)}${V4(vec4)}`,
    wg,
    subgroups: v.subgroup,
    name: `layernorm_forward${vec4 ? '_v4' : ''}`,
    comment: `layernorm forward: one workgroup per row${vec4 ? ', vec4s' : ''}`,
    paramWords: 3,
    buffers: { y: b('read_write'), stats: 'read_write', x: b('read'), gamma: b('read'), beta: b('read') }, // stats [rows, 2]: mean, rstd
    helpers: rowReduce(v),
    body: `
  let n = ${n}; let at = ${at};
  // Two passes over the row (mean, then centred variance) for accuracy with large means.
  var s = 0.0;
  for (var j = lid; j < n; j += ${wg}u) { s += ${hsum(vec4, 'x[at + j]')}; }
  let mean = rowSum2(lid, vec2<f32>(s, 0.0)).x / f32(D);
  var q = 0.0;
  for (var j = lid; j < n; j += ${wg}u) { let d = x[at + j] - mean; q += ${hsum(vec4, 'd * d')}; }
  let rstd = inverseSqrt(rowSum2(lid, vec2<f32>(q, 0.0)).x / f32(D) + pf(2u));
  if (row >= rows) { return; }
  for (var j = lid; j < n; j += ${wg}u) {
    y[at + j] = (x[at + j] - mean) * rstd * gamma[j] + beta[j];
  }
  if (lid == 0u) { stats[row * 2u] = mean; stats[row * 2u + 1u] = rstd; }`,
  });
}

// Params: [rows, D]
export function layerNormBackwardKernel(v: RowReduce = TREE_ROW_REDUCE, vec4 = false): Kernel {
  const wg = v.wg;
  const b = (access: 'read' | 'read_write') => vecBuf(vec4, access);
  const [n, at] = vec4 ? ['D / 4u', 'base / 4u'] : ['D', 'base'];
  return rowKernel({
    key: `layernorm:bwd-dx:${rowReduceId(v)}${V4(vec4)}`,
    wg,
    subgroups: v.subgroup,
    name: `layernorm_backward_dx${vec4 ? '_v4' : ''}`,
    comment: 'layernorm backward (dx): dx = rstd · (dy·γ - mean(dy·γ) - x̂ · mean(dy·γ·x̂))',
    paramWords: 2,
    buffers: { dx: b('read_write'), dy: b('read'), x: b('read'), gamma: b('read'), stats: 'read' },
    helpers: rowReduce(v),
    body: `
  let n = ${n}; let at = ${at};
  let mean = stats[r * 2u];
  let rstd = stats[r * 2u + 1u];
  var acc = vec2<f32>(0.0, 0.0);
  for (var j = lid; j < n; j += ${wg}u) {
    let g = dy[at + j] * gamma[j];
    let xh = (x[at + j] - mean) * rstd;
    acc += vec2<f32>(${hsum(vec4, 'g')}, ${hsum(vec4, 'g * xh')});
  }
  let sums = rowSum2(lid, acc) / f32(D);
  if (row >= rows) { return; }
  for (var j = lid; j < n; j += ${wg}u) {
    let g = dy[at + j] * gamma[j];
    let xh = (x[at + j] - mean) * rstd;
    dx[at + j] = rstd * (g - sums.x - xh * sums.y);
  }`,
  });
}

const COL_WG = 64;

// Params: [rows, D]
export function layerNormParamGradKernel(vec4 = false): Kernel {
  // One invocation per column i < D (per vec4 of columns with vec4).
  const b = (access: 'read' | 'read_write') => vecBuf(vec4, access);
  const t = vec4 ? 'vec4<f32>' : 'f32';
  return pointwiseKernel({
    key: `layernorm:bwd-params${V4(vec4)}`,
    name: `layernorm_backward_params${vec4 ? '_v4' : ''}`,
    comment: 'layernorm backward (dγ, dβ): column sums over rows',
    paramWords: 2,
    buffers: { dgamma: b('read_write'), dbeta: b('read_write'), dy: b('read'), x: b('read'), stats: 'read' },
    wg: COL_WG,
    count: vec4 ? 'pu(1u) / 4u' : 'pu(1u)',
    body: `let rows = pu(0u);
  let n = ${vec4 ? 'pu(1u) / 4u' : 'pu(1u)'};
  var dg = ${t}(0.0);
  var db = ${t}(0.0);
  for (var r = 0u; r < rows; r++) {
    let g = dy[r * n + i];
    dg += g * (x[r * n + i] - stats[r * 2u]) * stats[r * 2u + 1u];
    db += g;
  }
  dgamma[i] = dg;
  dbeta[i] = db;`,
  });
}

export function layerNormParams(rows: number, d: number, eps?: number): Uint32Array {
  const p = new Params().u32(rows, d);
  if (eps !== undefined) p.f32(eps);
  return p.toArray();
}

export function columnWorkgroups(d: number, vec4 = false): [number, number] {
  return grid1d(vec4 ? d / 4 : d, COL_WG);
}

// ---- launchers ----

/**
 * y and the per-row statistics [rows, 2] (mean, rstd) for x [..., D], γ and β [D]. The caller has
 * checked the shapes; operands not row-major from element 0 are copied first.
 */
export function layerNormForward(x: Tensor, gamma: Tensor, beta: Tensor, eps: number): { y: Tensor; stats: Tensor } {
  const d = x.shape[x.rank - 1];
  const rows = d === 0 ? 0 : x.size / d;
  const y = Tensor.empty(x.device, x.shape);
  const stats = Tensor.empty(x.device, [rows, 2]);
  if (rows > 0) {
    const [xc, gc, bc] = [x, gamma, beta].map((t) => contiguousInput(t, 'zero'));
    launch(layerNormForwardKernel(rowWg(x.device, { kernel: 'forward', rows, d }), d % 4 === 0), { y, stats, x: xc, gamma: gc, beta: bc }, layerNormParams(rows, d, eps), rowWorkgroups(rows), { bytes: 8 * rows * d });
    for (const t of [xc, gc, bc]) t.dispose();
  }
  return { y, stats };
}

/** dx, dγ, dβ from the output gradient dy and the forward's x, γ and statistics. */
export function layerNormBackward(dy: Tensor, x: Tensor, gamma: Tensor, stats: Tensor): { dx: Tensor; dgamma: Tensor; dbeta: Tensor } {
  const d = x.shape[x.rank - 1];
  const rows = d === 0 ? 0 : x.size / d;
  const dev = x.device;
  const dx = Tensor.empty(dev, x.shape);
  const dgamma = Tensor.empty(dev, [d]);
  const dbeta = Tensor.empty(dev, [d]);
  if (rows > 0) {
    const [gc, xc, gmc, sc] = [dy, x, gamma, stats].map((t) => contiguousInput(t, 'zero'));
    const vec4 = d % 4 === 0;
    launch(layerNormBackwardKernel(rowWg(dev, { kernel: 'dx', rows, d }), vec4), { dx, dy: gc, x: xc, gamma: gmc, stats: sc }, layerNormParams(rows, d), rowWorkgroups(rows), { bytes: 12 * rows * d });
    launch(layerNormParamGradKernel(vec4), { dgamma, dbeta, dy: gc, x: xc, stats: sc }, layerNormParams(rows, d), columnWorkgroups(d, vec4), { bytes: 8 * rows * d });
    for (const t of [gc, xc, gmc, sc]) t.dispose();
  }
  return { dx, dgamma, dbeta };
}

/** CPU reference (f64): y, and the per-row mean and rstd. */
export function layerNormCpu(x: ArrayLike<number>, gamma: ArrayLike<number>, beta: ArrayLike<number>, rows: number, d: number, eps: number) {
  const y = new Float64Array(rows * d);
  const mean = new Float64Array(rows);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += x[r * d + j];
    const m = s / d;
    let q = 0;
    for (let j = 0; j < d; j++) q += (x[r * d + j] - m) ** 2;
    const rs = 1 / Math.sqrt(q / d + eps);
    mean[r] = m;
    rstd[r] = rs;
    for (let j = 0; j < d; j++) y[r * d + j] = (x[r * d + j] - m) * rs * gamma[j] + beta[j];
  }
  return { y, mean, rstd };
}
