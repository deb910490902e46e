// Tensor creation: from JavaScript data, constants and seeded random draws (generated on the GPU).
// These are the Device's methods (device.tensor(...), device.zeros(...), device.randn(...)), attached
// in engine/ops/index.ts.

import type { Device } from '../device.js';
import { Storage, Tensor } from '../tensor.js';
import { ShapeError } from '../errors.js';
import { checkShape, shapeStr, sizeOf } from '../shape.js';
import { fill } from '../../kernels/elementwise.js';
import { randomFill, type RandomDistribution } from '../../kernels/random.js';

export type TensorData = Float32Array | Float64Array | Int32Array | Uint8Array | readonly number[] | number;

function flatten(data: unknown, out: number[], shape: number[], depth: number): void {
  if (Array.isArray(data)) {
    if (shape.length <= depth) shape.push(data.length);
    else if (shape[depth] !== data.length) throw new ShapeError(`tensor: ragged nested array at depth ${depth}`);
    for (const v of data) flatten(v, out, shape, depth + 1);
  } else if (typeof data === 'number') {
    if (depth !== shape.length) throw new ShapeError(`tensor: ragged nested array at depth ${depth}`);
    out.push(data);
  } else {
    throw new ShapeError(`tensor: expected numbers, got ${typeof data}`);
  }
}

/** A tensor from a typed array, a (nested) number array or a number; `shape` defaults to the data's. */
export function tensor(device: Device, data: TensorData | readonly unknown[], shape?: readonly number[]): Tensor {
  let values: Float32Array;
  let inferred: number[];
  if (typeof data === 'number') {
    values = Float32Array.of(data);
    inferred = [];
  } else if (ArrayBuffer.isView(data)) {
    values = data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>);
    inferred = [values.length];
  } else {
    const flat: number[] = [];
    inferred = [];
    flatten(data, flat, inferred, 0);
    values = Float32Array.from(flat);
  }
  const finalShape = shape ? [...shape] : inferred;
  checkShape(finalShape, 'tensor');
  if (sizeOf(finalShape) !== values.length) {
    throw new ShapeError(`tensor: ${values.length} values do not fill shape ${shapeStr(finalShape)}`);
  }
  return new Tensor(device, new Storage(device, device.upload(values)), finalShape);
}

export function full(device: Device, shape: readonly number[], value: number): Tensor {
  checkShape(shape, 'full');
  const out = Tensor.empty(device, shape);
  fill(out, value);
  return out;
}

export interface RandomOptions {
  /** Seed for this draw; without one the device's generator (Device.manualSeed) supplies a fresh stream. */
  seed?: number;
}

function random(device: Device, dist: RandomDistribution, shape: readonly number[], a: number, b: number, opts: RandomOptions): Tensor {
  checkShape(shape, dist === 'normal' ? 'randn' : 'rand');
  const [seed, stream] = opts.seed === undefined ? device.nextRandomStream() : [opts.seed, 0];
  const out = Tensor.empty(device, shape);
  randomFill(out, dist, seed, stream, a, b);
  return out;
}

/** Normal draws with the given mean and std. */
export function randn(device: Device, shape: readonly number[], opts: RandomOptions & { mean?: number; std?: number } = {}): Tensor {
  return random(device, 'normal', shape, opts.mean ?? 0, opts.std ?? 1, opts);
}

/** Uniform draws in [low, high). */
export function rand(device: Device, shape: readonly number[], opts: RandomOptions & { low?: number; high?: number } = {}): Tensor {
  return random(device, 'uniform', shape, opts.low ?? 0, opts.high ?? 1, opts);
}

export function arange(device: Device, start: number, stop?: number, step = 1): Tensor {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0) throw new ShapeError('arange: step must not be 0');
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) values[i] = start + i * step;
  return tensor(device, values, [n]);
}
