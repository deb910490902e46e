// LayerNorm over the last axis: y = (x - mean) · rstd · γ + β, with rstd = 1/sqrt(var + eps).
//
// Forward: one workgroup per row (strided partial sums, tree in workgroup memory); saves mean and rstd
// per row for the backward. Backward: dx per row from the saved statistics; dγ and dβ are column sums
// over rows, one invocation per column (consecutive invocations read consecutive columns).

import { Params, defineKernel, grid1d, linearIndex, paramsBlock, workgroupReduce, type Kernel } from './wgsl.js';

const WG = 64;

const ROW_REDUCE = workgroupReduce('rowSum2', 'vec2<f32>', WG, (a, b) => `${a} + ${b}`);

// Params: [rows, D, eps(f32)]
export function layerNormForwardKernel(): Kernel {
  return defineKernel('layernorm:fwd', () => ({
    name: 'layernorm_forward',
    paramWords: 3,
    source: `// layernorm forward: one workgroup per row
${paramsBlock(3)}
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>; // [rows, 2]: mean, rstd
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read> gamma: array<f32>;
@group(0) @binding(5) var<storage, read> beta: array<f32>;
${ROW_REDUCE}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  let rows = pu(0u);
  let D = pu(1u);
  let base = min(row, rows - 1u) * D;
  // Two passes over the row (mean, then centred variance) for accuracy with large means.
  var s = 0.0;
  for (var j = lid; j < D; j += ${WG}u) { s += x[base + j]; }
  let mean = rowSum2(lid, vec2<f32>(s, 0.0)).x / f32(D);
  var q = 0.0;
  for (var j = lid; j < D; j += ${WG}u) { let d = x[base + j] - mean; q += d * d; }
  let rstd = inverseSqrt(rowSum2(lid, vec2<f32>(q, 0.0)).x / f32(D) + pf(2u));
  if (row >= rows) { return; }
  for (var j = lid; j < D; j += ${WG}u) {
    y[base + j] = (x[base + j] - mean) * rstd * gamma[j] + beta[j];
  }
  if (lid == 0u) { stats[row * 2u] = mean; stats[row * 2u + 1u] = rstd; }
}
`,
  }));
}

// Params: [rows, D]
export function layerNormBackwardKernel(): Kernel {
  return defineKernel('layernorm:bwd-dx', () => ({
    name: 'layernorm_backward_dx',
    paramWords: 2,
    source: `// layernorm backward (dx): dx = rstd · (dy·γ - mean(dy·γ) - x̂ · mean(dy·γ·x̂))
${paramsBlock(2)}
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read> gamma: array<f32>;
@group(0) @binding(5) var<storage, read> stats: array<f32>;
${ROW_REDUCE}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  let rows = pu(0u);
  let D = pu(1u);
  let r = min(row, rows - 1u);
  let base = r * D;
  let mean = stats[r * 2u];
  let rstd = stats[r * 2u + 1u];
  var acc = vec2<f32>(0.0, 0.0);
  for (var j = lid; j < D; j += ${WG}u) {
    let g = dy[base + j] * gamma[j];
    let xh = (x[base + j] - mean) * rstd;
    acc += vec2<f32>(g, g * xh);
  }
  let sums = rowSum2(lid, acc) / f32(D);
  if (row >= rows) { return; }
  for (var j = lid; j < D; j += ${WG}u) {
    let g = dy[base + j] * gamma[j];
    let xh = (x[base + j] - mean) * rstd;
    dx[base + j] = rstd * (g - sums.x - xh * sums.y);
  }
}
`,
  }));
}

const COL_WG = 64;

// Params: [rows, D]
export function layerNormParamGradKernel(): Kernel {
  return defineKernel('layernorm:bwd-params', () => ({
    name: 'layernorm_backward_params',
    paramWords: 2,
    source: `// layernorm backward (dγ, dβ): column sums over rows
${paramsBlock(2)}
@group(0) @binding(1) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(2) var<storage, read_write> dbeta: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read> x: array<f32>;
@group(0) @binding(5) var<storage, read> stats: array<f32>;
${linearIndex(COL_WG)}
@compute @workgroup_size(${COL_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j = linearIndex(gid, nwg);
  let rows = pu(0u);
  let D = pu(1u);
  if (j >= D) { return; }
  var dg = 0.0;
  var db = 0.0;
  for (var r = 0u; r < rows; r++) {
    let g = dy[r * D + j];
    dg += g * (x[r * D + j] - stats[r * 2u]) * stats[r * 2u + 1u];
    db += g;
  }
  dgamma[j] = dg;
  dbeta[j] = db;
}
`,
  }));
}

export function layerNormParams(rows: number, d: number, eps?: number): Uint32Array {
  const p = new Params().u32(rows, d);
  if (eps !== undefined) p.f32(eps);
  return p.toArray();
}

export function rowWorkgroups(rows: number): [number, number] {
  return grid1d(rows, 1);
}

export function columnWorkgroups(d: number): [number, number] {
  return grid1d(d, COL_WG);
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
