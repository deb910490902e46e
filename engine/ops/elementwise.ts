// Elementwise ops with NumPy broadcasting; kernels in kernels/elementwise.ts. Each op's backward rule
// sits in RULES below, beside the op table; gradients of broadcast inputs are summed back to shape.
// Rules use the tensor methods (g.mul(y), g.sum(...)), attached in engine/ops/index.ts.

import { Tensor } from '../tensor.js';
import { ShapeError } from '../errors.js';
import { needsGrad, record } from '../autograd.js';
import { broadcastShapes, sizeOf } from '../shape.js';
import { ELEMENTWISE_OPS, writeElementwise, type ElementwiseOpName } from '../../kernels/elementwise.js';

function checkInputs(op: string, inputs: readonly Tensor[]): void {
  for (const t of inputs) t.assertAlive(op);
  for (const t of inputs) {
    if (t.device !== inputs[0].device) throw new ShapeError(`${op}: inputs live on different devices`);
  }
}

/** Sums a broadcast gradient back to `shape` (the inverse of broadcasting). */
export function sumToShape(g: Tensor, shape: readonly number[]): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  return g.sum(axes, true).reshape(shape);
}

type Saved = 'x0' | 'x1' | 'x2' | 'out';

interface Rule {
  save: readonly Saved[];
  /** Gradients for each input, before summing over broadcast axes. */
  grad: (g: Tensor, saved: readonly Tensor[], s: readonly number[]) => (Tensor | null)[];
}

const RULES: Partial<Record<ElementwiseOpName, Rule>> = {
  identity: { save: [], grad: (g) => [g] },
  neg: { save: [], grad: (g) => [g.neg()] },
  exp: { save: ['out'], grad: (g, [y]) => [g.mul(y)] },
  log: { save: ['x0'], grad: (g, [x]) => [g.div(x)] },
  sqrt: { save: ['out'], grad: (g, [y]) => [g.div(y.mul(2))] },
  rsqrt: { save: ['out'], grad: (g, [y]) => [g.mul(y.pow(3)).mul(-0.5)] },
  abs: { save: ['x0'], grad: (g, [x]) => [g.mul(x.sign())] },
  sign: { save: [], grad: () => [null] },
  square: { save: ['x0'], grad: (g, [x]) => [g.mul(x).mul(2)] },
  reciprocal: { save: ['out'], grad: (g, [y]) => [g.mul(y.square()).neg()] },
  sin: { save: ['x0'], grad: (g, [x]) => [g.mul(x.cos())] },
  cos: { save: ['x0'], grad: (g, [x]) => [g.mul(x.sin()).neg()] },
  tanh: { save: ['out'], grad: (g, [y]) => [g.mul(y.square().rsub(1))] },
  sigmoid: { save: ['out'], grad: (g, [y]) => [g.mul(y).mul(y.rsub(1))] },
  relu: { save: ['x0'], grad: (g, [x]) => [elementwise('reluGrad', [x, g])] },
  gelu: { save: ['x0'], grad: (g, [x]) => [elementwise('geluGrad', [x, g])] },
  add: { save: [], grad: (g) => [g, g] },
  sub: { save: [], grad: (g) => [g, g.neg()] },
  mul: { save: ['x0', 'x1'], grad: (g, [a, b]) => [g.mul(b), g.mul(a)] },
  div: { save: ['x0', 'x1'], grad: (g, [a, b]) => [g.div(b), g.mul(a).div(b.square()).neg()] },
  pow: {
    save: ['x0', 'x1', 'out'],
    // d/da a^b = b·a^(b-1); d/db a^b = a^b·log(a) (defined for a > 0, as in PyTorch).
    grad: (g, [a, b, y]) => [g.mul(b).mul(a.pow(b.sub(1))), g.mul(y).mul(a.log())],
  },
  maximum: {
    save: ['x0', 'x1'],
    grad: (g, [a, b]) => {
      const m = elementwise('greaterEqual', [a, b]);
      return [g.mul(m), g.mul(m.rsub(1))];
    },
  },
  minimum: {
    save: ['x0', 'x1'],
    grad: (g, [a, b]) => {
      const m = elementwise('greaterEqual', [b, a]);
      return [g.mul(m), g.mul(m.rsub(1))];
    },
  },
  addScalar: { save: [], grad: (g) => [g] },
  mulScalar: { save: [], grad: (g, _, [s]) => [g.mul(s)] },
  divScalar: { save: [], grad: (g, _, [s]) => [g.div(s)] },
  rsubScalar: { save: [], grad: (g) => [g.neg()] },
  rdivScalar: { save: ['out'], grad: (g, [y], [s]) => [g.mul(y.square()).div(-s)] },
  powScalar: { save: ['x0'], grad: (g, [x], [s]) => [g.mul(x.pow(s - 1)).mul(s)] },
  clamp: { save: ['x0'], grad: (g, [x], [lo, hi]) => [elementwise('clampGrad', [x, g], [lo, hi])] },
  where: {
    save: ['x0'],
    grad: (g, [c]) => {
      const zero = g.device.zeros([]);
      return [null, elementwise('where', [c, g, zero]), elementwise('where', [c, zero, g])];
    },
  },
};

/** A new contiguous tensor holding `op` applied to `inputs` with broadcasting (differentiable where RULES has the op). */
export function elementwise(op: ElementwiseOpName, inputs: readonly Tensor[], scalars: readonly number[] = []): Tensor {
  checkInputs(op, inputs);
  const expected = ELEMENTWISE_OPS[op].inputs;
  if (inputs.length !== expected) throw new ShapeError(`${op}: takes ${expected} tensor input(s), got ${inputs.length}`);
  let shape: number[] = [...inputs[0].shape];
  for (let k = 1; k < inputs.length; k++) shape = broadcastShapes(shape, inputs[k].shape, op);
  const out = Tensor.empty(inputs[0].device, shape);
  if (sizeOf(shape) > 0) writeElementwise(op, out, inputs, scalars);
  if (needsGrad(...inputs)) {
    const rule = RULES[op];
    if (!rule) throw new ShapeError(`${op} is not differentiable`);
    const saved = rule.save.map((k) => (k === 'out' ? out : inputs[Number(k[1])]));
    const shapes = inputs.map((t) => t.shape);
    record(out, op, inputs, saved, (g, sv) => rule.grad(g, sv, scalars).map((gi, i) => (gi ? sumToShape(gi, shapes[i]) : null)));
  }
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
