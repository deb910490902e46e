// Shape and stride arithmetic (pure functions, no GPU).

import { ShapeError } from './errors.js';

export type Shape = readonly number[];

export const MAX_RANK = 8;

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function contiguousStrides(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

export function isContiguous(shape: Shape, strides: Shape): boolean {
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && strides[i] !== s) return false;
    s *= shape[i];
  }
  return true;
}

export function checkShape(shape: Shape, what: string): void {
  if (shape.length > MAX_RANK) throw new ShapeError(`${what}: rank ${shape.length} exceeds the maximum ${MAX_RANK}`);
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new ShapeError(`${what}: invalid dimension ${d} in shape [${shape.join(', ')}]`);
  }
}

/** Normalizes a possibly negative axis, naming the op in the error. */
export function normAxis(axis: number, rank: number, op: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) {
    throw new ShapeError(`${op}: axis ${axis} is out of range for rank ${rank}`);
  }
  return a;
}

/** NumPy broadcasting of two shapes. */
export function broadcastShapes(a: Shape, b: Shape, op = 'broadcast'): number[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(`${op}: shapes [${a.join(', ')}] and [${b.join(', ')}] do not broadcast`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides that read a tensor of `shape`/`strides` as if it had `target` shape (stride 0 on broadcast axes). */
export function broadcastStrides(shape: Shape, strides: Shape, target: Shape, op = 'broadcast'): number[] {
  const out = new Array<number>(target.length).fill(0);
  const lead = target.length - shape.length;
  if (lead < 0) throw new ShapeError(`${op}: cannot broadcast [${shape.join(', ')}] to [${target.join(', ')}]`);
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === target[lead + i]) out[lead + i] = shape[i] === 1 ? 0 : strides[i];
    else if (shape[i] === 1) out[lead + i] = 0;
    else throw new ShapeError(`${op}: cannot broadcast [${shape.join(', ')}] to [${target.join(', ')}]`);
  }
  return out;
}

/**
 * Merges adjacent axes that every operand walks contiguously, so kernels index fewer dimensions.
 * `stridesList[k]` are operand k's strides over `shape`. Size-1 axes are dropped.
 */
export function collapseDims(shape: Shape, stridesList: readonly Shape[]): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = stridesList.map(() => []);
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1) continue;
    const last = outShape.length - 1;
    const mergeable =
      last >= 0 && stridesList.every((st, k) => outStrides[k][last] === st[i] * shape[i]);
    if (mergeable) {
      outShape[last] *= shape[i];
      stridesList.forEach((st, k) => (outStrides[k][last] = st[i]));
    } else {
      outShape.push(shape[i]);
      stridesList.forEach((st, k) => outStrides[k].push(st[i]));
    }
  }
  return { shape: outShape, strides: outStrides };
}

export function shapeStr(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}
