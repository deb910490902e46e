// Softmax over the last axis, one workgroup per row (its reduction: defaultRowReduce in kernels/wgsl.ts):
// y = exp(x - max) / Σ exp(x - max).
// Backward: dx = y · (dy - Σ dy·y).

import { Tensor } from '../engine/tensor.js';
import { contiguousInput } from './elementwise.js';
import { Params, TREE_ROW_REDUCE, defaultRowReduce, launch, rowKernel, rowReduceId, rowWorkgroups, workgroupReduce, type Kernel, type RowReduce } from './wgsl.js';

const rowReduce = (v: RowReduce) => workgroupReduce('rowReduce', 'f32', v.wg, (a, b) => `select(${a} + ${b}, max(${a}, ${b}), isMax)`, ', isMax: bool', v.subgroup);

// Params: [rows, D, -inf bits]
export function softmaxForwardKernel(v: RowReduce = TREE_ROW_REDUCE): Kernel {
  const wg = v.wg;
  return rowKernel({
    key: `softmax:fwd:${rowReduceId(v)}`,
    wg,
    subgroups: v.subgroup,
    name: 'softmax_forward',
    comment: 'softmax forward',
    paramWords: 3,
    buffers: { y: 'read_write', x: 'read' },
    helpers: rowReduce(v),
    body: `
  var m = pf(2u);
  for (var j = lid; j < D; j += ${wg}u) { m = max(m, x[base + j]); }
  m = rowReduce(lid, m, true);
  var s = 0.0;
  for (var j = lid; j < D; j += ${wg}u) { s += exp(x[base + j] - m); }
  let inv = 1.0 / rowReduce(lid, s, false);
  if (row >= rows) { return; }
  for (var j = lid; j < D; j += ${wg}u) { y[base + j] = exp(x[base + j] - m) * inv; }`,
  });
}

// Params: [rows, D]
export function softmaxBackwardKernel(v: RowReduce = TREE_ROW_REDUCE): Kernel {
  const wg = v.wg;
  return rowKernel({
    key: `softmax:bwd:${rowReduceId(v)}`,
    wg,
    subgroups: v.subgroup,
    name: 'softmax_backward',
    comment: 'softmax backward',
    paramWords: 2,
    buffers: { dx: 'read_write', y: 'read', dy: 'read' },
    helpers: rowReduce(v),
    body: `
  var s = 0.0;
  for (var j = lid; j < D; j += ${wg}u) { s += dy[base + j] * y[base + j]; }
  s = rowReduce(lid, s, false);
  if (row >= rows) { return; }
  for (var j = lid; j < D; j += ${wg}u) { dx[base + j] = y[base + j] * (dy[base + j] - s); }`,
  });
}

export function softmaxParams(rows: number, d: number, forward: boolean): Uint32Array {
  const p = new Params().u32(rows, d);
  if (forward) p.f32(-Infinity);
  return p.toArray();
}

function rowsOf(x: Tensor): [number, number] {
  const d = x.shape[x.rank - 1];
  return [d === 0 ? 0 : x.size / d, d];
}

/** Softmax of x [..., D] over its last axis. */
export function softmaxForward(x: Tensor): Tensor {
  const [rows, d] = rowsOf(x);
  const y = Tensor.empty(x.device, x.shape);
  if (rows > 0) {
    const xc = contiguousInput(x, 'zero');
    launch(softmaxForwardKernel(defaultRowReduce(x.device)), { y, x: xc }, softmaxParams(rows, d, true), rowWorkgroups(rows), { bytes: 8 * rows * d });
    xc.dispose();
  }
  return y;
}

/** dx from the forward's output y and the output gradient dy. */
export function softmaxBackward(y: Tensor, dy: Tensor): Tensor {
  const [rows, d] = rowsOf(y);
  const dx = Tensor.empty(y.device, y.shape);
  if (rows > 0) {
    const [yc, gc] = [y, dy].map((t) => contiguousInput(t, 'zero'));
    launch(softmaxBackwardKernel(defaultRowReduce(y.device)), { dx, y: yc, dy: gc }, softmaxParams(rows, d, false), rowWorkgroups(rows), { bytes: 12 * rows * d });
    yc.dispose();
    gc.dispose();
  }
  return dx;
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
