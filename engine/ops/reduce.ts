// Reductions along axes, forward and backward; kernels in kernels/reduce.ts.

import type { Tensor } from '../tensor.js';
import { ShapeError } from '../errors.js';
import { normAxis, shapeStr, sizeOf } from '../shape.js';
import { needsGrad, record } from '../autograd.js';
import { elementwise } from './elementwise.js';
import { reduceAxes, type ReduceOpName } from '../../kernels/reduce.js';

export function normAxes(axes: number | readonly number[] | undefined, rank: number, op: string): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : [...axes];
  const norm = list.map((a) => normAxis(a, rank, op));
  if (new Set(norm).size !== norm.length) throw new ShapeError(`${op}: repeated axis in [${list.join(', ')}]`);
  return norm.sort((a, b) => a - b);
}

function reduce(op: ReduceOpName, x: Tensor, axes: number | readonly number[] | undefined, keepDims: boolean, mean: boolean): Tensor {
  const out = reduceForward(op, x, axes, keepDims, mean);
  if (!needsGrad(x)) return out;
  const ax = normAxes(axes, x.rank, op);
  const kept = x.shape.map((d, i) => (ax.includes(i) ? 1 : d)); // out's shape with keepDims
  const r = sizeOf(ax.map((i) => x.shape[i]));
  if (op === 'sum') {
    // d/dx sum = 1 (mean: 1/R) on every reduced element.
    return record(out, mean ? 'mean' : 'sum', [x], [], (g) => {
      const ge = g.reshape(kept).expand(x.shape);
      return [mean ? ge.mul(1 / r) : ge.contiguous()];
    });
  }
  // max/min: the gradient goes to the extreme elements, split evenly among ties (as torch.amax).
  return record(out, op, [x], [x, out], (g, [xs, ys]) => {
    const mask = elementwise('equal', [xs, ys.reshape(kept)]);
    const count = mask.sum(ax, true);
    return [mask.mul(g.reshape(kept).div(count))];
  });
}

function reduceForward(op: ReduceOpName, x: Tensor, axes: number | readonly number[] | undefined, keepDims: boolean, mean: boolean): Tensor {
  const name = mean ? 'mean' : op;
  x.assertAlive(name);
  const ax = normAxes(axes, x.rank, name);
  const kept = x.shape.map((_, i) => i).filter((i) => !ax.includes(i));
  const outShape = keepDims ? x.shape.map((d, i) => (ax.includes(i) ? 1 : d)) : kept.map((i) => x.shape[i]);
  const r = sizeOf(ax.map((i) => x.shape[i]));
  if (r === 0 && op !== 'sum') {
    throw new ShapeError(`${name}: cannot reduce ${shapeStr(x.shape)} over an empty axis`);
  }
  return reduceAxes(op, x, ax, outShape, mean ? (r === 0 ? NaN : 1 / r) : 1);
}

export const sum = (x: Tensor, axes?: number | readonly number[], keepDims = false) => reduce('sum', x, axes, keepDims, false);
export const mean = (x: Tensor, axes?: number | readonly number[], keepDims = false) => reduce('sum', x, axes, keepDims, true);
export const max = (x: Tensor, axes?: number | readonly number[], keepDims = false) => reduce('max', x, axes, keepDims, false);
export const min = (x: Tensor, axes?: number | readonly number[], keepDims = false) => reduce('min', x, axes, keepDims, false);
