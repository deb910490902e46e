// Softmax over the last axis, one workgroup per row: y = exp(x - max) / Σ exp(x - max).
// Backward: dx = y · (dy - Σ dy·y).

import { defineKernel, paramsBlock, Params, workgroupReduce, type Kernel } from './wgsl.js';

const WG = 64;

const ROW_REDUCE = workgroupReduce('rowReduce', 'f32', WG, (a, b) => `select(${a} + ${b}, max(${a}, ${b}), isMax)`, ', isMax: bool');

// Params: [rows, D, -inf bits]
export function softmaxForwardKernel(): Kernel {
  return defineKernel('softmax:fwd', () => ({
    name: 'softmax_forward',
    paramWords: 3,
    source: `// softmax forward
${paramsBlock(3)}
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
${ROW_REDUCE}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  let rows = pu(0u);
  let D = pu(1u);
  let base = min(row, rows - 1u) * D;
  var m = pf(2u);
  for (var j = lid; j < D; j += ${WG}u) { m = max(m, x[base + j]); }
  m = rowReduce(lid, m, true);
  var s = 0.0;
  for (var j = lid; j < D; j += ${WG}u) { s += exp(x[base + j] - m); }
  let inv = 1.0 / rowReduce(lid, s, false);
  if (row >= rows) { return; }
  for (var j = lid; j < D; j += ${WG}u) { y[base + j] = exp(x[base + j] - m) * inv; }
}
`,
  }));
}

// Params: [rows, D]
export function softmaxBackwardKernel(): Kernel {
  return defineKernel('softmax:bwd', () => ({
    name: 'softmax_backward',
    paramWords: 2,
    source: `// softmax backward
${paramsBlock(2)}
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
${ROW_REDUCE}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  let rows = pu(0u);
  let D = pu(1u);
  let base = min(row, rows - 1u) * D;
  var s = 0.0;
  for (var j = lid; j < D; j += ${WG}u) { s += dy[base + j] * y[base + j]; }
  s = rowReduce(lid, s, false);
  if (row >= rows) { return; }
  for (var j = lid; j < D; j += ${WG}u) { dx[base + j] = y[base + j] * (dy[base + j] - s); }
}
`,
  }));
}

export function softmaxParams(rows: number, d: number, forward: boolean): Uint32Array {
  const p = new Params().u32(rows, d);
  if (forward) p.f32(-Infinity);
  return p.toArray();
}

/** CPU reference (f64), softmax over the last axis of [rows, d]. */
export function softmaxCpu(x: ArrayLike<number>, rows: number, d: number): Float64Array {
  const y = new Float64Array(rows * d);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let j = 0; j < d; j++) m = Math.max(m, x[r * d + j]);
    let s = 0;
    for (let j = 0; j < d; j++) s += Math.exp(x[r * d + j] - m);
    for (let j = 0; j < d; j++) y[r * d + j] = Math.exp(x[r * d + j] - m) / s;
  }
  return y;
}
