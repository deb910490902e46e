// Elementwise ops with NumPy broadcasting; the kernels are in kernels/elementwise.ts.

import { Tensor } from '../tensor.js';
import { ShapeError } from '../errors.js';
import { broadcastShapes, broadcastStrides, collapseDims, contiguousStrides, shapeStr, sizeOf } from '../shape.js';
import {
  ELEMENTWISE_OPS,
  elementwiseKernel,
  elementwiseParams,
  elementwiseWorkgroups,
  type ElementwiseOpName,
  type StridedOperand,
} from '../../kernels/elementwise.js';

function checkInputs(op: string, inputs: readonly Tensor[]): void {
  for (const t of inputs) t.assertAlive(op);
  for (const t of inputs) {
    if (t.device !== inputs[0].device) throw new ShapeError(`${op}: inputs live on different devices`);
  }
}

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
  const kernel = elementwiseKernel(op, shape.length, outOp.linear, inOps.map((o) => o.linear));
  out.device.dispatch(
    kernel,
    [out.storage.buffer, ...inputs.map((t) => t.storage.buffer)],
    elementwiseParams(out.size, shape, outOp, inOps, scalars),
    elementwiseWorkgroups(out.size),
  );
}

/** A new contiguous tensor holding `op` applied to `inputs` with broadcasting. */
export function elementwise(op: ElementwiseOpName, inputs: readonly Tensor[], scalars: readonly number[] = []): Tensor {
  checkInputs(op, inputs);
  const expected = ELEMENTWISE_OPS[op].inputs;
  if (inputs.length !== expected) throw new ShapeError(`${op}: takes ${expected} tensor input(s), got ${inputs.length}`);
  let shape: number[] = [...inputs[0].shape];
  for (let k = 1; k < inputs.length; k++) shape = broadcastShapes(shape, inputs[k].shape, op);
  const out = Tensor.empty(inputs[0].device, shape);
  if (sizeOf(shape) > 0) writeElementwise(op, out, inputs, scalars);
  return out;
}

export function unary(op: ElementwiseOpName, x: Tensor): Tensor {
  return elementwise(op, [x]);
}

function binary(op: 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'maximum' | 'minimum', a: Tensor, b: Tensor | number): Tensor {
  if (typeof b !== 'number') return elementwise(op, [a, b]);
  switch (op) {
    case 'add': return elementwise('addScalar', [a], [b]);
    case 'sub': return elementwise('addScalar', [a], [-b]);
    case 'mul': return elementwise('mulScalar', [a], [b]);
    case 'div': return elementwise('divScalar', [a], [b]);
    case 'pow': return elementwise('powScalar', [a], [b]);
    case 'maximum': return elementwise('clamp', [a], [b, Infinity]);
    case 'minimum': return elementwise('clamp', [a], [-Infinity, b]);
  }
}

function scalarFirst(op: 'add' | 'sub' | 'mul' | 'div', a: number, b: Tensor): Tensor {
  switch (op) {
    case 'add': return elementwise('addScalar', [b], [a]);
    case 'mul': return elementwise('mulScalar', [b], [a]);
    case 'sub': return elementwise('rsubScalar', [b], [a]);
    case 'div': return elementwise('rdivScalar', [b], [a]);
  }
}

type Operand = Tensor | number;
const pick = (op: 'add' | 'sub' | 'mul' | 'div', a: Operand, b: Operand): Tensor => {
  if (typeof a === 'number') {
    if (typeof b === 'number') throw new ShapeError(`${op}: at least one operand must be a tensor`);
    return scalarFirst(op, a, b);
  }
  return binary(op, a, b);
};

export const add = (a: Operand, b: Operand): Tensor => pick('add', a, b);
export const sub = (a: Operand, b: Operand): Tensor => pick('sub', a, b);
export const mul = (a: Operand, b: Operand): Tensor => pick('mul', a, b);
export const div = (a: Operand, b: Operand): Tensor => pick('div', a, b);
export const pow = (a: Tensor, b: Operand): Tensor => binary('pow', a, b);
export const maximum = (a: Tensor, b: Operand): Tensor => binary('maximum', a, b);
export const minimum = (a: Tensor, b: Operand): Tensor => binary('minimum', a, b);
export const clamp = (x: Tensor, min: number, max: number): Tensor => {
  if (min > max) throw new ShapeError(`clamp: min ${min} is greater than max ${max}`);
  return elementwise('clamp', [x], [min, max]);
};
export const where = (cond: Tensor, a: Tensor, b: Tensor): Tensor => elementwise('where', [cond, a, b]);

export function checkSameShape(op: string, a: Tensor, b: Tensor): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new ShapeError(`${op}: shapes ${shapeStr(a.shape)} and ${shapeStr(b.shape)} differ`);
  }
}
