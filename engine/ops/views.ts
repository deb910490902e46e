// Shape ops. reshape (of contiguous data), permute, transpose, slice/narrow, expand, squeeze and
// unsqueeze return views on the same storage; contiguous() and concat() copy.

import { Tensor } from '../tensor.js';
import { ShapeError } from '../errors.js';
import { broadcastStrides, checkShape, contiguousStrides, normAxis, shapeStr, sizeOf } from '../shape.js';
import { sumToShape } from './elementwise.js';
import { writeElementwise } from '../../kernels/elementwise.js';
import { needsGrad, recomputableCopy, record, type BackwardRule } from '../autograd.js';

/** A view on x's storage; differentiable through `rule` when x requires grad. */
function view(x: Tensor, shape: readonly number[], strides: readonly number[], offset: number, name: string, rule: BackwardRule): Tensor {
  const out = new Tensor(x.device, x.storage, shape, strides, offset);
  return needsGrad(x) ? record(out, name, [x], [], rule) : out;
}

const passThrough: BackwardRule = (g) => [g];

export function contiguous(x: Tensor): Tensor {
  x.assertAlive('contiguous');
  if (x.isContiguous) return view(x, x.shape, contiguousStrides(x.shape), x.offset, 'contiguous', passThrough);
  const copy = (src: Tensor) => {
    const c = Tensor.empty(src.device, src.shape);
    writeElementwise('identity', c, [src]);
    return c;
  };
  const out = copy(x);
  if (!needsGrad(x)) return out;
  record(out, 'contiguous', [x], [], passThrough);
  // A later op that saves the copy holds x's storage instead when another op saves that anyway.
  recomputableCopy(out, x, copy);
  return out;
}

export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  x.assertAlive('reshape');
  const target = [...shape];
  const infer = target.indexOf(-1);
  if (infer !== target.lastIndexOf(-1)) throw new ShapeError(`reshape: only one -1 allowed in ${shapeStr(shape)}`);
  if (infer >= 0) {
    const known = sizeOf(target.filter((_, i) => i !== infer));
    if (known === 0 || x.size % known !== 0) {
      throw new ShapeError(`reshape: cannot reshape ${shapeStr(x.shape)} (${x.size} elements) to ${shapeStr(shape)}`);
    }
    target[infer] = x.size / known;
  }
  checkShape(target, 'reshape');
  if (sizeOf(target) !== x.size) {
    throw new ShapeError(`reshape: cannot reshape ${shapeStr(x.shape)} (${x.size} elements) to ${shapeStr(shape)}`);
  }
  const rule: BackwardRule = (g) => [g.reshape(x.shape)];
  if (x.isContiguous) return view(x, target, contiguousStrides(target), x.offset, 'reshape', rule);
  const c = contiguous(x);
  const out = view(c, target, contiguousStrides(target), c.offset, 'reshape', (g) => [g.reshape(c.shape)]);
  c.dispose();
  return out;
}

export function permute(x: Tensor, axes: readonly number[]): Tensor {
  x.assertAlive('permute');
  const norm = axes.map((a) => normAxis(a, x.rank, 'permute'));
  if (norm.length !== x.rank || new Set(norm).size !== x.rank) {
    throw new ShapeError(`permute: [${axes.join(', ')}] is not a permutation of the ${x.rank} axes of ${shapeStr(x.shape)}`);
  }
  const inverse = new Array<number>(norm.length);
  norm.forEach((a, i) => (inverse[a] = i));
  return view(x, norm.map((a) => x.shape[a]), norm.map((a) => x.strides[a]), x.offset, 'permute', (g) => [permute(g, inverse)]);
}

export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const axes = x.shape.map((_, i) => i);
  const i = normAxis(a, x.rank, 'transpose');
  const j = normAxis(b, x.rank, 'transpose');
  [axes[i], axes[j]] = [axes[j], axes[i]];
  return permute(x, axes);
}

/**
 * Elements begin[d] <= i < end[d] on each axis (negative values count from the end; missing axes are
 * taken whole; `end` defaults to the axis length).
 */
export function slice(x: Tensor, begin: readonly number[], end?: readonly number[]): Tensor {
  x.assertAlive('slice');
  if (begin.length > x.rank || (end && end.length > x.rank)) {
    throw new ShapeError(`slice: more bounds than the ${x.rank} axes of ${shapeStr(x.shape)}`);
  }
  const shape: number[] = [];
  const starts: number[] = [];
  let offset = x.offset;
  for (let d = 0; d < x.rank; d++) {
    const n = x.shape[d];
    const resolve = (v: number) => (v < 0 ? v + n : v);
    const b = resolve(begin[d] ?? 0);
    const e = resolve(end?.[d] ?? n);
    if (!Number.isInteger(b) || !Number.isInteger(e) || b < 0 || e > n || b > e) {
      throw new ShapeError(`slice: bounds [${begin[d] ?? 0}, ${end?.[d] ?? n}) are out of range for axis ${d} of ${shapeStr(x.shape)}`);
    }
    shape.push(e - b);
    starts.push(b);
    offset += b * x.strides[d];
  }
  return view(x, shape, x.strides, offset, 'slice', (g) => {
    // The gradient is zero outside the slice.
    const full = g.device.zeros(x.shape);
    const dst = slice(full, starts, starts.map((b, d) => b + shape[d]));
    writeElementwise('identity', dst, [g]);
    dst.dispose();
    return [full];
  });
}

export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  const a = normAxis(axis, x.rank, 'narrow');
  const begin = x.shape.map((_, i) => (i === a ? start : 0));
  const end = x.shape.map((d, i) => (i === a ? start + length : d));
  return slice(x, begin, end);
}

/** Broadcasts size-1 axes (and new leading axes) to `shape` without copying. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  x.assertAlive('expand');
  checkShape(shape, 'expand');
  return view(x, shape, broadcastStrides(x.shape, x.strides, shape, 'expand'), x.offset, 'expand', (g) => [sumToShape(g, x.shape)]);
}

export function squeeze(x: Tensor, axis?: number): Tensor {
  x.assertAlive('squeeze');
  if (axis === undefined) {
    const keep = x.shape.map((d, i) => (d !== 1 ? i : -1)).filter((i) => i >= 0);
    return view(x, keep.map((i) => x.shape[i]), keep.map((i) => x.strides[i]), x.offset, 'squeeze', (g) => [g.reshape(x.shape)]);
  }
  const a = normAxis(axis, x.rank, 'squeeze');
  if (x.shape[a] !== 1) throw new ShapeError(`squeeze: axis ${axis} of ${shapeStr(x.shape)} has size ${x.shape[a]}, not 1`);
  return view(x, x.shape.filter((_, i) => i !== a), x.strides.filter((_, i) => i !== a), x.offset, 'squeeze', (g) => [g.reshape(x.shape)]);
}

export function unsqueeze(x: Tensor, axis: number): Tensor {
  x.assertAlive('unsqueeze');
  const a = normAxis(axis, x.rank + 1, 'unsqueeze');
  const shape = [...x.shape];
  const strides = [...x.strides];
  shape.splice(a, 0, 1);
  strides.splice(a, 0, a < x.rank ? x.strides[a] * x.shape[a] : 1);
  return view(x, shape, strides, x.offset, 'unsqueeze', (g) => [g.reshape(x.shape)]);
}

/** Joins tensors along `axis`; all other axes must match. */
export function concat(tensors: readonly Tensor[], axis = 0): Tensor {
  if (tensors.length === 0) throw new ShapeError('concat: no tensors given');
  for (const t of tensors) t.assertAlive('concat');
  const first = tensors[0];
  const a = normAxis(axis, first.rank, 'concat');
  for (const t of tensors) {
    if (t.device !== first.device) throw new ShapeError('concat: tensors live on different devices');
    if (t.rank !== first.rank || t.shape.some((d, i) => i !== a && d !== first.shape[i])) {
      throw new ShapeError(`concat: ${shapeStr(t.shape)} does not match ${shapeStr(first.shape)} outside axis ${axis}`);
    }
  }
  const shape = [...first.shape];
  shape[a] = tensors.reduce((s, t) => s + t.shape[a], 0);
  const out = Tensor.empty(first.device, shape);
  let pos = 0;
  for (const t of tensors) {
    if (t.size > 0) {
      const dst = narrow(out, a, pos, t.shape[a]);
      writeElementwise('identity', dst, [t]);
      dst.dispose();
    }
    pos += t.shape[a];
  }
  if (!needsGrad(...tensors)) return out;
  const sizes = tensors.map((t) => t.shape[a]);
  return record(out, 'concat', tensors, [], (g) => {
    let p = 0;
    return sizes.map((n) => {
      const part = narrow(g, a, p, n).contiguous();
      p += n;
      return part;
    });
  });
}
