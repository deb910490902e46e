// The differentiable ops, and the one place their method forms are attached: `x.add(y)`,
// `x.matmul(w)`, `x.sum()`, `x.reshape(...)`, `x.backward()` on Tensor and `device.tensor(...)`,
// `device.zeros(...)`, `device.randn(...)` on Device. The engine core (engine/tensor.ts,
// engine/device.ts) declares none of them, so it imports no op; the declarations below merge into its
// classes, and the assignments at the bottom run once, when this module is loaded (engine/index.ts
// loads it, so any device made through `vitgpu` or `vitgpu/node` has them).

import { Device } from '../device.js';
import { Tensor } from '../tensor.js';
import { backward } from '../autograd.js';
import * as creation from './creation.js';
import * as ew from './elementwise.js';
import * as red from './reduce.js';
import * as views from './views.js';
import { matmul } from './matmul.js';

export { type TensorData, type RandomOptions } from './creation.js';
export { add, sub, mul, div, pow, maximum, minimum, clamp, where, unary, elementwise } from './elementwise.js';
export { sum, mean, max, min } from './reduce.js';
export { reshape, permute, transpose, slice, narrow, expand, squeeze, unsqueeze, contiguous, concat } from './views.js';
export { matmul, linear, type LinearOptions } from './matmul.js';
export { layerNorm } from './layernorm.js';
export { softmax } from './softmax.js';
export { bceWithLogits, type BceOptions } from './bce.js';
export { attention, attentionQkv } from './attention.js';
export { patchEmbed, patchEmbedCpu } from './conv.js';
export { loraLinear, seededDropout, type LoraFactors, type LoraLinearOptions } from './lora.js';

type Scalar = number;
type Axes = number | number[];

declare module '../tensor.js' {
  interface Tensor {
    /** Backpropagates from this scalar (or with an explicit output gradient). */
    backward(grad?: Tensor): void;
    // ---- elementwise ----
    add(other: Tensor | Scalar): Tensor;
    sub(other: Tensor | Scalar): Tensor;
    /** value - this */
    rsub(value: Scalar): Tensor;
    mul(other: Tensor | Scalar): Tensor;
    div(other: Tensor | Scalar): Tensor;
    pow(other: Tensor | Scalar): Tensor;
    maximum(other: Tensor | Scalar): Tensor;
    minimum(other: Tensor | Scalar): Tensor;
    neg(): Tensor;
    exp(): Tensor;
    log(): Tensor;
    sqrt(): Tensor;
    rsqrt(): Tensor;
    abs(): Tensor;
    sign(): Tensor;
    square(): Tensor;
    reciprocal(): Tensor;
    sin(): Tensor;
    cos(): Tensor;
    tanh(): Tensor;
    sigmoid(): Tensor;
    relu(): Tensor;
    gelu(): Tensor;
    clamp(min: number, max: number): Tensor;
    // ---- reductions ----
    sum(axes?: Axes, keepDims?: boolean): Tensor;
    mean(axes?: Axes, keepDims?: boolean): Tensor;
    max(axes?: Axes, keepDims?: boolean): Tensor;
    min(axes?: Axes, keepDims?: boolean): Tensor;
    // ---- shape ----
    reshape(shape: readonly number[]): Tensor;
    permute(axes: readonly number[]): Tensor;
    transpose(a?: number, b?: number): Tensor;
    slice(begin: readonly number[], end?: readonly number[]): Tensor;
    narrow(axis: number, start: number, length: number): Tensor;
    expand(shape: readonly number[]): Tensor;
    squeeze(axis?: number): Tensor;
    unsqueeze(axis: number): Tensor;
    contiguous(): Tensor;
    matmul(other: Tensor): Tensor;
  }
}

declare module '../device.js' {
  interface Device {
    /** A tensor from a typed array, a (nested) number array or a number. */
    tensor(data: creation.TensorData | readonly unknown[], shape?: readonly number[]): Tensor;
    zeros(shape: readonly number[]): Tensor;
    ones(shape: readonly number[]): Tensor;
    full(shape: readonly number[], value: number): Tensor;
    /** Normal draws (mean 0, std 1 unless given), seeded or from the device's generator. */
    randn(shape: readonly number[], opts?: creation.RandomOptions & { mean?: number; std?: number }): Tensor;
    /** Uniform draws in [low, high) (default [0, 1)). */
    rand(shape: readonly number[], opts?: creation.RandomOptions & { low?: number; high?: number }): Tensor;
    arange(start: number, stop?: number, step?: number): Tensor;
  }
}

const unaryNames = [
  'neg', 'exp', 'log', 'sqrt', 'rsqrt', 'abs', 'sign', 'square', 'reciprocal', 'sin', 'cos', 'tanh', 'sigmoid', 'relu', 'gelu',
] as const;

const tensorMethods: ThisType<Tensor> & Partial<Record<keyof Tensor, unknown>> = {
  backward(this: Tensor, grad?: Tensor) { backward(this, grad); },
  add(this: Tensor, other: Tensor | Scalar) { return ew.add(this, other); },
  sub(this: Tensor, other: Tensor | Scalar) { return ew.sub(this, other); },
  rsub(this: Tensor, value: Scalar) { return ew.sub(value, this); },
  mul(this: Tensor, other: Tensor | Scalar) { return ew.mul(this, other); },
  div(this: Tensor, other: Tensor | Scalar) { return ew.div(this, other); },
  pow(this: Tensor, other: Tensor | Scalar) { return ew.pow(this, other); },
  maximum(this: Tensor, other: Tensor | Scalar) { return ew.maximum(this, other); },
  minimum(this: Tensor, other: Tensor | Scalar) { return ew.minimum(this, other); },
  clamp(this: Tensor, min: number, max: number) { return ew.clamp(this, min, max); },
  sum(this: Tensor, axes?: Axes, keepDims = false) { return red.sum(this, axes, keepDims); },
  mean(this: Tensor, axes?: Axes, keepDims = false) { return red.mean(this, axes, keepDims); },
  max(this: Tensor, axes?: Axes, keepDims = false) { return red.max(this, axes, keepDims); },
  min(this: Tensor, axes?: Axes, keepDims = false) { return red.min(this, axes, keepDims); },
  reshape(this: Tensor, shape: readonly number[]) { return views.reshape(this, shape); },
  permute(this: Tensor, axes: readonly number[]) { return views.permute(this, axes); },
  transpose(this: Tensor, a = -2, b = -1) { return views.transpose(this, a, b); },
  slice(this: Tensor, begin: readonly number[], end?: readonly number[]) { return views.slice(this, begin, end); },
  narrow(this: Tensor, axis: number, start: number, length: number) { return views.narrow(this, axis, start, length); },
  expand(this: Tensor, shape: readonly number[]) { return views.expand(this, shape); },
  squeeze(this: Tensor, axis?: number) { return views.squeeze(this, axis); },
  unsqueeze(this: Tensor, axis: number) { return views.unsqueeze(this, axis); },
  contiguous(this: Tensor) { return views.contiguous(this); },
  matmul(this: Tensor, other: Tensor) { return matmul(this, other); },
};
for (const name of unaryNames) {
  (tensorMethods as Record<string, unknown>)[name] = function (this: Tensor) { return ew.unary(name, this); };
}

const deviceMethods: ThisType<Device> & Partial<Record<keyof Device, unknown>> = {
  tensor(this: Device, data: creation.TensorData | readonly unknown[], shape?: readonly number[]) { return creation.tensor(this, data, shape); },
  zeros(this: Device, shape: readonly number[]) { return creation.full(this, shape, 0); },
  ones(this: Device, shape: readonly number[]) { return creation.full(this, shape, 1); },
  full(this: Device, shape: readonly number[], value: number) { return creation.full(this, shape, value); },
  randn(this: Device, shape: readonly number[], opts?: Parameters<typeof creation.randn>[2]) { return creation.randn(this, shape, opts); },
  rand(this: Device, shape: readonly number[], opts?: Parameters<typeof creation.rand>[2]) { return creation.rand(this, shape, opts); },
  arange(this: Device, start: number, stop?: number, step?: number) { return creation.arange(this, start, stop, step); },
};

// Plain (non-enumerable) prototype methods, as if written in the classes.
for (const [cls, methods] of [[Tensor, tensorMethods], [Device, deviceMethods]] as const) {
  for (const [name, fn] of Object.entries(methods)) {
    Object.defineProperty(cls.prototype, name, { value: fn, writable: true, configurable: true, enumerable: false });
  }
}
