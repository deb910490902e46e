// Elementwise kernels: unary and binary math, ops with scalar operands, strided copy and fill.
//
// One generic kernel: up to 3 strided (and broadcast, stride 0) inputs, an optional strided output,
// and up to 4 f32 scalars from the params block. The op is a WGSL expression over x0..x2 and s0..s3;
// the same table carries the CPU reference used by the tests. `writeElementwise` launches it on
// tensors; `contiguousInput` is the one helper every other kernel family uses to get an operand in the
// layout its shader indexes.

import { ERF_WGSL, Params, grid1d, launch, pointwiseKernel, type Kernel, type StorageSpec } from './wgsl.js';
import { SINCOS_WGSL } from './math-wgsl.js';
import { MAX_RANK, broadcastStrides, collapseDims, contiguousStrides, type Shape } from '../engine/shape.js';
import { Tensor } from '../engine/tensor.js';

export interface ElementwiseOp {
  /** WGSL expression over x0, x1, x2 (inputs) and s0..s3 (scalars). */
  readonly wgsl: string;
  /** CPU reference in f64. */
  readonly cpu: (x: number[], s: number[]) => number;
  readonly inputs: 1 | 2 | 3;
  /** WGSL helper functions the expression uses. */
  readonly helpers?: string;
}

// pow() in WGSL is undefined for negative bases; PyTorch gives (-2)^2 = 4, (-2)^3 = -8, (-2)^0.5 = NaN.
const POW_WGSL = `
fn pow_f32(x: f32, y: f32) -> f32 {
  if (x >= 0.0) { return select(pow(x, y), 1.0, y == 0.0); }
  // NaN built at run time: WGSL rejects NaN in constant expressions.
  if (fract(y) != 0.0) { return bitcast<f32>(0x7fc00000u | (bitcast<u32>(x) & 0u)); }
  let r = pow(-x, y);
  return select(r, -r, fract(y * 0.5) != 0.0);
}
`;

// tanh via exp(-2|x|) so large |x| gives ±1 instead of inf/inf = NaN.
const TANH_WGSL = `
fn tanh_f32(x: f32) -> f32 {
  let t = exp(-2.0 * abs(x));
  return sign(x) * (1.0 - t) / (1.0 + t);
}
`;

const erf = (x: number): number => {
  // High-accuracy erf for the CPU reference (Numerical Recipes erfc, |rel err| < 1.2e-7).
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z - 1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 +
        t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - r : r - 1;
};

export const ELEMENTWISE_OPS = {
  identity: { inputs: 1, wgsl: 'x0', cpu: ([a]) => a },
  neg: { inputs: 1, wgsl: '-x0', cpu: ([a]) => -a },
  exp: { inputs: 1, wgsl: 'exp(x0)', cpu: ([a]) => Math.exp(a) },
  log: { inputs: 1, wgsl: 'log(x0)', cpu: ([a]) => Math.log(a) },
  sqrt: { inputs: 1, wgsl: 'sqrt(x0)', cpu: ([a]) => Math.sqrt(a) },
  rsqrt: { inputs: 1, wgsl: 'inverseSqrt(x0)', cpu: ([a]) => 1 / Math.sqrt(a) },
  abs: { inputs: 1, wgsl: 'abs(x0)', cpu: ([a]) => Math.abs(a) },
  sign: { inputs: 1, wgsl: 'sign(x0)', cpu: ([a]) => Math.sign(a) },
  square: { inputs: 1, wgsl: 'x0 * x0', cpu: ([a]) => a * a },
  reciprocal: { inputs: 1, wgsl: '1.0 / x0', cpu: ([a]) => 1 / a },
  // Our own sin/cos (kernels/math-wgsl.ts): WGSL's allow 2^-11 error, and adapters differ that much.
  sin: { inputs: 1, wgsl: 'sin_f32(x0)', helpers: SINCOS_WGSL, cpu: ([a]) => Math.sin(a) },
  cos: { inputs: 1, wgsl: 'cos_f32(x0)', helpers: SINCOS_WGSL, cpu: ([a]) => Math.cos(a) },
  tanh: { inputs: 1, wgsl: 'tanh_f32(x0)', helpers: TANH_WGSL, cpu: ([a]) => Math.tanh(a) },
  sigmoid: { inputs: 1, wgsl: '1.0 / (1.0 + exp(-x0))', cpu: ([a]) => 1 / (1 + Math.exp(-a)) },
  relu: { inputs: 1, wgsl: 'max(x0, 0.0)', cpu: ([a]) => Math.max(a, 0) },
  gelu: {
    inputs: 1,
    wgsl: '0.5 * x0 * (1.0 + erf_f32(x0 * 0.7071067811865476))',
    helpers: ERF_WGSL,
    cpu: ([a]) => 0.5 * a * (1 + erf(a / Math.SQRT2)),
  },
  add: { inputs: 2, wgsl: 'x0 + x1', cpu: ([a, b]) => a + b },
  sub: { inputs: 2, wgsl: 'x0 - x1', cpu: ([a, b]) => a - b },
  mul: { inputs: 2, wgsl: 'x0 * x1', cpu: ([a, b]) => a * b },
  div: { inputs: 2, wgsl: 'x0 / x1', cpu: ([a, b]) => a / b },
  pow: { inputs: 2, wgsl: 'pow_f32(x0, x1)', helpers: POW_WGSL, cpu: ([a, b]) => Math.pow(a, b) },
  maximum: { inputs: 2, wgsl: 'max(x0, x1)', cpu: ([a, b]) => Math.max(a, b) },
  minimum: { inputs: 2, wgsl: 'min(x0, x1)', cpu: ([a, b]) => Math.min(a, b) },
  addScalar: { inputs: 1, wgsl: 'x0 + s0', cpu: ([a], [s]) => a + s },
  mulScalar: { inputs: 1, wgsl: 'x0 * s0', cpu: ([a], [s]) => a * s },
  rsubScalar: { inputs: 1, wgsl: 's0 - x0', cpu: ([a], [s]) => s - a },
  rdivScalar: { inputs: 1, wgsl: 's0 / x0', cpu: ([a], [s]) => s / a },
  divScalar: { inputs: 1, wgsl: 'x0 / s0', cpu: ([a], [s]) => a / s },
  powScalar: { inputs: 1, wgsl: 'pow_f32(x0, s0)', helpers: POW_WGSL, cpu: ([a], [s]) => Math.pow(a, s) },
  clamp: { inputs: 1, wgsl: 'clamp(x0, s0, s1)', cpu: ([a], [lo, hi]) => Math.min(Math.max(a, lo), hi) },
  // Gradient helpers: x0 is the forward input, x1 the incoming gradient.
  reluGrad: { inputs: 2, wgsl: 'select(0.0, x1, x0 > 0.0)', cpu: ([x, g]) => (x > 0 ? g : 0) },
  geluGrad: {
    inputs: 2,
    // d/dx [x·Φ(x)] = Φ(x) + x·φ(x)
    wgsl: 'x1 * (0.5 * (1.0 + erf_f32(x0 * 0.7071067811865476)) + x0 * 0.3989422804014327 * exp(-0.5 * x0 * x0))',
    helpers: ERF_WGSL,
    cpu: ([x, g]) => g * (0.5 * (1 + erf(x / Math.SQRT2)) + x * Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI)),
  },
  clampGrad: { inputs: 2, wgsl: 'select(0.0, x1, x0 >= s0 && x0 <= s1)', cpu: ([x, g], [lo, hi]) => (x >= lo && x <= hi ? g : 0) },
  greaterEqual: { inputs: 2, wgsl: 'select(0.0, 1.0, x0 >= x1)', cpu: ([a, b]) => (a >= b ? 1 : 0) },
  equal: { inputs: 2, wgsl: 'select(0.0, 1.0, x0 == x1)', cpu: ([a, b]) => (a === b ? 1 : 0) },
  /** where(cond, a, b): cond != 0 picks a. */
  where: { inputs: 3, wgsl: 'select(x2, x1, x0 != 0.0)', cpu: ([c, a, b]) => (c !== 0 ? a : b) },
} satisfies Record<string, ElementwiseOp>;

export type ElementwiseOpName = keyof typeof ELEMENTWISE_OPS;

export interface StridedOperand {
  offset: number;
  /** Strides over the (collapsed) iteration shape; 0 on broadcast axes. */
  strides: readonly number[];
  /** True when the operand's element for linear index i is at offset + i. */
  linear: boolean;
}

const WG = 256;

// Params layout: [n, outOffset, inOffset0..2, s0..s3, shape[MAX_RANK], outStrides[MAX_RANK], inStrides[3][MAX_RANK]]
const P_N = 0;
const P_OUT_OFFSET = 1;
const P_IN_OFFSET = 2;
const P_SCALARS = 5;
const P_SHAPE = 9;
const P_OUT_STRIDES = P_SHAPE + MAX_RANK;
const P_IN_STRIDES = P_OUT_STRIDES + MAX_RANK;
const PARAM_WORDS = P_IN_STRIDES + 3 * MAX_RANK;

export function elementwiseKernel(opName: ElementwiseOpName, rank: number, outLinear: boolean, inLinear: readonly boolean[]): Kernel {
  const op: ElementwiseOp = ELEMENTWISE_OPS[opName];
  const n = op.inputs;
  const buffers: StorageSpec = { out: 'read_write' };
  for (let k = 0; k < n; k++) buffers[`in${k}`] = 'read';
  const needIndex = !outLinear || inLinear.some((l) => !l);
  const lines: string[] = [];
  lines.push(`let o_out = ${outLinear ? `pu(${P_OUT_OFFSET}u) + i` : `pu(${P_OUT_OFFSET}u) + off_out`};`);
  for (let k = 0; k < n; k++) {
    lines.push(`let x${k} = in${k}[${inLinear[k] ? `pu(${P_IN_OFFSET + k}u) + i` : `pu(${P_IN_OFFSET + k}u) + off${k}`}];`);
  }
  const index: string[] = [];
  if (needIndex) {
    index.push('var rem = i;');
    if (!outLinear) index.push('var off_out = 0u;');
    for (let k = 0; k < n; k++) if (!inLinear[k]) index.push(`var off${k} = 0u;`);
    for (let d = rank - 1; d >= 0; d--) {
      index.push(`{ let dim = pu(${P_SHAPE + d}u); let c = rem % dim; rem = rem / dim;`);
      if (!outLinear) index.push(`  off_out += c * pu(${P_OUT_STRIDES + d}u);`);
      for (let k = 0; k < n; k++) if (!inLinear[k]) index.push(`  off${k} += c * pu(${P_IN_STRIDES + k * MAX_RANK + d}u);`);
      index.push('}');
    }
  }
  return pointwiseKernel({
    key: `ew:${opName}:${rank}:${outLinear ? 1 : 0}:${inLinear.map((l) => (l ? 1 : 0)).join('')}`,
    name: `elementwise_${opName}`,
    comment: `elementwise ${opName} (rank ${rank})`,
    paramWords: PARAM_WORDS,
    buffers,
    wg: WG,
    helpers: op.helpers,
    count: `pu(${P_N}u)`,
    body: `let s0 = pf(${P_SCALARS}u); let s1 = pf(${P_SCALARS + 1}u); let s2 = pf(${P_SCALARS + 2}u); let s3 = pf(${P_SCALARS + 3}u);
  ${index.join('\n  ')}
  ${lines.join('\n  ')}
  out[o_out] = ${op.wgsl};`,
  });
}

/**
 * `op` on linear operands, one vec4 per invocation: on lavapipe a thread's vec4 load or store costs
 * about what a scalar one does (each is a per-lane loop with a bounds check), so this streams 3–4×
 * the bytes per second of the scalar kernel (bench/lab/stream.lab.ts; bench/RESULTS.md). The op's
 * scalar expression is applied per component. Params as elementwiseParams with n and the offsets in
 * vec4s.
 */
export function elementwiseVec4Kernel(opName: ElementwiseOpName): Kernel {
  const op: ElementwiseOp = ELEMENTWISE_OPS[opName];
  const n = op.inputs;
  const buffers: StorageSpec = { out: ['read_write', 'vec4<f32>'] };
  for (let k = 0; k < n; k++) buffers[`in${k}`] = ['read', 'vec4<f32>'];
  const xs = [0, 1, 2].map((k) => (k < n ? `x${k}: f32` : `_x${k}: f32`)).join(', ');
  const loads = Array.from({ length: n }, (_, k) => `let v${k} = in${k}[pu(${P_IN_OFFSET + k}u) + i];`);
  const comp = (c: string) => `op_f(${[0, 1, 2].map((k) => (k < n ? `v${k}.${c}` : '0.0')).join(', ')}, s0, s1, s2, s3)`;
  return pointwiseKernel({
    key: `ew4:${opName}`,
    name: `elementwise_${opName}_v4`,
    comment: `elementwise ${opName}, one vec4 per invocation`,
    paramWords: PARAM_WORDS,
    buffers,
    wg: WG,
    helpers: `${op.helpers ?? ''}
fn op_f(${xs}, s0: f32, s1: f32, s2: f32, s3: f32) -> f32 { return ${op.wgsl}; }`,
    count: `pu(${P_N}u)`,
    body: `let s0 = pf(${P_SCALARS}u); let s1 = pf(${P_SCALARS + 1}u); let s2 = pf(${P_SCALARS + 2}u); let s3 = pf(${P_SCALARS + 3}u);
  ${loads.join('\n  ')}
  out[pu(${P_OUT_OFFSET}u) + i] = vec4<f32>(${['x', 'y', 'z', 'w'].map(comp).join(', ')});`,
  });
}

export function elementwiseParams(
  n: number,
  shape: readonly number[],
  out: StridedOperand,
  inputs: readonly StridedOperand[],
  scalars: readonly number[] = [],
): Uint32Array {
  const p = new Params().u32(n, out.offset);
  for (let k = 0; k < 3; k++) p.u32(inputs[k]?.offset ?? 0);
  for (let k = 0; k < 4; k++) p.f32(scalars[k] ?? 0);
  const pad = (xs: readonly number[]) => {
    for (let d = 0; d < MAX_RANK; d++) p.u32(xs[d] ?? 0);
  };
  pad(shape);
  pad(out.strides);
  for (let k = 0; k < 3; k++) pad(inputs[k]?.strides ?? []);
  return p.toArray();
}

export function elementwiseWorkgroups(n: number): [number, number] {
  return grid1d(n, WG);
}

/** CPU reference: applies `op` to flat f64 inputs that already have the output's shape. */
export function elementwiseCpu(opName: ElementwiseOpName, inputs: readonly ArrayLike<number>[], scalars: number[] = []): Float64Array {
  const op: ElementwiseOp = ELEMENTWISE_OPS[opName];
  const n = inputs[0].length;
  const out = new Float64Array(n);
  const x: number[] = [];
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < inputs.length; k++) x[k] = inputs[k][i];
    out[i] = op.cpu(x, scalars);
  }
  return out;
}

// ---- launchers ----

function isLinear(strides: readonly number[], shape: readonly number[]): boolean {
  const c = contiguousStrides(shape);
  return strides.every((s, i) => s === c[i]);
}

/** Runs `op` over `inputs` (broadcast to `out`'s shape) and writes the result into the view `out`. */
export function writeElementwise(op: ElementwiseOpName, out: Tensor, inputs: readonly Tensor[], scalars: readonly number[] = []): void {
  if (out.size === 0) return;
  const inStrides = inputs.map((t) => broadcastStrides(t.shape, t.strides, out.shape, op));
  const { shape, strides } = collapseDims(out.shape, [out.strides, ...inStrides]);
  const operand = (offset: number, st: number[]): StridedOperand => ({ offset, strides: st, linear: isLinear(st, shape) });
  const outOp = operand(out.offset, strides[0]);
  const inOps = inputs.map((t, k) => operand(t.offset, strides[k + 1]));
  const buffers: Record<string, Tensor> = { out };
  inputs.forEach((t, k) => (buffers[`in${k}`] = t));
  const bytes = 4 * out.size * (1 + inputs.length);
  if (vec4Eligible(out.size, [outOp, ...inOps])) {
    const v4 = (o: StridedOperand): StridedOperand => ({ offset: o.offset / 4, strides: [], linear: true });
    launch(elementwiseVec4Kernel(op), buffers, elementwiseParams(out.size / 4, [], v4(outOp), inOps.map(v4), scalars), elementwiseWorkgroups(out.size / 4), { bytes });
    return;
  }
  launch(
    elementwiseKernel(op, shape.length, outOp.linear, inOps.map((o) => o.linear)),
    buffers,
    elementwiseParams(out.size, shape, outOp, inOps, scalars),
    elementwiseWorkgroups(out.size),
    { bytes },
  );
}

/**
 * Whether the vec4 kernel applies: every operand linear (no broadcast, no strides) and starting at a
 * multiple of 4 elements, and the size a multiple of 4.
 */
export function vec4Eligible(size: number, operands: readonly StridedOperand[]): boolean {
  return size % 4 === 0 && operands.every((o) => o.linear && o.offset % 4 === 0);
}

/**
 * Where an operand's first element must sit for a kernel: anywhere (the kernel takes an offset),
 * at a multiple of 4 elements (the kernel reads vec4s from an offset in vec4s), or at element 0.
 */
export type OperandOffset = 'any' | 'vec4' | 'zero';

/**
 * `t`, broadcast to `shape` (default its own), as a contiguous tensor whose offset suits `offset`: a
 * view of `t` when it already is one, else a copy. Always a new reference for the caller to dispose;
 * records no graph. Every kernel family gets its operands' layout through this one helper.
 */
export function contiguousInput(t: Tensor, offset: OperandOffset, shape: Shape = t.shape): Tensor {
  t.assertAlive('contiguousInput');
  const sameShape = shape.length === t.rank && shape.every((d, i) => d === t.shape[i]);
  const placed = offset === 'any' || (offset === 'vec4' ? t.offset % 4 === 0 : t.offset === 0);
  if (sameShape && t.isContiguous && placed) return new Tensor(t.device, t.storage, t.shape, contiguousStrides(t.shape), t.offset);
  const c = Tensor.empty(t.device, shape);
  writeElementwise('identity', c, [t]);
  return c;
}

/** Sets every element of the contiguous tensor `out` to `value`. */
export function fill(out: Tensor, value: number): void {
  if (out.size === 0) return;
  launch(fillKernel(), { out }, new Params().u32(out.size).f32(value).toArray(), grid1d(out.size, FILL_WG), { bytes: 4 * out.size });
}

// ---- fill: out[i] = value ----

const FILL_WG = 256;

export function fillKernel(): Kernel {
  return pointwiseKernel({
    key: 'fill',
    name: 'fill',
    comment: 'fill',
    paramWords: 2,
    buffers: { out: 'read_write' },
    wg: FILL_WG,
    body: 'out[i] = pf(1u);',
  });
}
