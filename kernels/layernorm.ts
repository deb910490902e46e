// LayerNorm over the last axis: y = (x - mean) · rstd · γ + β, with rstd = 1/sqrt(var + eps).
//
// Forward: one workgroup per row (64 invocations and a tree in workgroup memory, or on lavapipe one
// subgroup and shuffles: defaultRowReduce in kernels/wgsl.ts; kernels/layernorm-tune.ts may choose
// another); saves mean and rstd per row for the backward. Backward: dx per row from the saved
// statistics; dγ and dβ are column sums over rows, one invocation per column (consecutive invocations
// read consecutive columns).

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

// Params: [rows, D, eps(f32)]
export function layerNormForwardKernel(v: RowReduce = TREE_ROW_REDUCE): Kernel {
  const wg = v.wg;
  return rowKernel({
    key: `layernorm:fwd:${rowReduceId(v)}`,
    wg,
    subgroups: v.subgroup,
    name: 'layernorm_forward',
    comment: 'layernorm forward: one workgroup per row',
    paramWords: 3,
    buffers: { y: 'read_write', stats: 'read_write', x: 'read', gamma: 'read', beta: 'read' }, // stats [rows, 2]: mean, rstd
    helpers: rowReduce(v),
    body: `
  // Two passes over the row (mean, then centred variance) for accuracy with large means.
  var s = 0.0;
  for (var j = lid; j < D; j += ${wg}u) { s += x[base + j]; }
  let mean = rowSum2(lid, vec2<f32>(s, 0.0)).x / f32(D);
  var q = 0.0;
  for (var j = lid; j < D; j += ${wg}u) { let d = x[base + j] - mean; q += d * d; }
  let rstd = inverseSqrt(rowSum2(lid, vec2<f32>(q, 0.0)).x / f32(D) + pf(2u));
  if (row >= rows) { return; }
  for (var j = lid; j < D; j += ${wg}u) {
    y[base + j] = (x[base + j] - mean) * rstd * gamma[j] + beta[j];
  }
  if (lid == 0u) { stats[row * 2u] = mean; stats[row * 2u + 1u] = rstd; }`,
  });
}

// Params: [rows, D]
export function layerNormBackwardKernel(v: RowReduce = TREE_ROW_REDUCE): Kernel {
  const wg = v.wg;
  return rowKernel({
    key: `layernorm:bwd-dx:${rowReduceId(v)}`,
    wg,
    subgroups: v.subgroup,
    name: 'layernorm_backward_dx',
    comment: 'layernorm backward (dx): dx = rstd · (dy·γ - mean(dy·γ) - x̂ · mean(dy·γ·x̂))',
    paramWords: 2,
    buffers: { dx: 'read_write', dy: 'read', x: 'read', gamma: 'read', stats: 'read' },
    helpers: rowReduce(v),
    body: `
  let mean = stats[r * 2u];
  let rstd = stats[r * 2u + 1u];
  var acc = vec2<f32>(0.0, 0.0);
  for (var j = lid; j < D; j += ${wg}u) {
    let g = dy[base + j] * gamma[j];
    let xh = (x[base + j] - mean) * rstd;
    acc += vec2<f32>(g, g * xh);
  }
  let sums = rowSum2(lid, acc) / f32(D);
  if (row >= rows) { return; }
  for (var j = lid; j < D; j += ${wg}u) {
    let g = dy[base + j] * gamma[j];
    let xh = (x[base + j] - mean) * rstd;
    dx[base + j] = rstd * (g - sums.x - xh * sums.y);
  }`,
  });
}

const COL_WG = 64;

// Params: [rows, D]
export function layerNormParamGradKernel(): Kernel {
  // One invocation per column i < D.
  return pointwiseKernel({
    key: 'layernorm:bwd-params',
    name: 'layernorm_backward_params',
    comment: 'layernorm backward (dγ, dβ): column sums over rows',
    paramWords: 2,
    buffers: { dgamma: 'read_write', dbeta: 'read_write', dy: 'read', x: 'read', stats: 'read' },
    wg: COL_WG,
    count: 'pu(1u)',
    body: `let rows = pu(0u);
  let D = pu(1u);
  var dg = 0.0;
  var db = 0.0;
  for (var r = 0u; r < rows; r++) {
    let g = dy[r * D + i];
    dg += g * (x[r * D + i] - stats[r * 2u]) * stats[r * 2u + 1u];
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

export function columnWorkgroups(d: number): [number, number] {
  return grid1d(d, COL_WG);
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
    launch(layerNormForwardKernel(rowWg(x.device, { kernel: 'forward', rows, d })), { y, stats, x: xc, gamma: gc, beta: bc }, layerNormParams(rows, d, eps), rowWorkgroups(rows), { bytes: 8 * rows * d });
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
    launch(layerNormBackwardKernel(rowWg(dev, { kernel: 'dx', rows, d })), { dx, dy: gc, x: xc, gamma: gmc, stats: sc }, layerNormParams(rows, d), rowWorkgroups(rows), { bytes: 12 * rows * d });
    launch(layerNormParamGradKernel(), { dgamma, dbeta, dy: gc, x: xc, stats: sc }, layerNormParams(rows, d), columnWorkgroups(d), { bytes: 8 * rows * d });
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
