// GPU-resident f32 tensors. A Tensor is a view (shape, strides, element offset) on a reference-counted
// Storage; views (reshape of contiguous data, permute, slice, expand) share storage, and the buffer goes
// back to the pool when the last view is disposed.

import type { Device } from './device.js';
import type { PooledBuffer } from './buffer-pool.js';
import { DisposedError, ShapeError } from './errors.js';
import { trackInScope } from './scope.js';
import { backward, type GradNode } from './autograd.js';
import { contiguousStrides, isContiguous, shapeStr, sizeOf, type Shape } from './shape.js';
import * as ew from './ops/elementwise.js';
import * as red from './ops/reduce.js';
import * as views from './ops/views.js';
import { matmul } from './ops/linear.js';

export class Storage {
  private refs = 0;

  constructor(readonly device: Device, readonly buffer: PooledBuffer) {}

  retain(): void {
    this.refs++;
  }

  release(): void {
    if (--this.refs === 0) this.device.release(this.buffer);
  }
}

export type Scalar = number;

export class Tensor {
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly size: number;
  private disposed = false;
  /** Set on leaves (parameters, inputs) whose gradient backward() should compute. */
  requiresGrad = false;
  private gradTensor: Tensor | null = null;
  private node: GradNode | null = null;

  constructor(
    readonly device: Device,
    readonly storage: Storage,
    shape: Shape,
    strides: Shape = contiguousStrides(shape),
    /** Offset of element [0, 0, ...] in the storage, in elements. */
    readonly offset = 0,
  ) {
    this.shape = Object.freeze([...shape]);
    this.strides = Object.freeze([...strides]);
    this.size = sizeOf(shape);
    storage.retain();
    trackInScope(this);
  }

  /** An uninitialized contiguous tensor (kernels write it). */
  static empty(device: Device, shape: Shape): Tensor {
    return new Tensor(device, new Storage(device, device.allocate(Math.max(1, sizeOf(shape)) * 4)), shape);
  }

  get rank(): number {
    return this.shape.length;
  }

  get isContiguous(): boolean {
    return isContiguous(this.shape, this.strides);
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Throws if this tensor was disposed; `op` names the operation in the message. */
  assertAlive(op: string): void {
    if (this.disposed) throw new DisposedError(`${op}: tensor ${shapeStr(this.shape)} was used after dispose()`);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.storage.release();
    if (this.node) {
      this.node.ownerDisposed = true;
      this.node.maybeRelease();
    }
  }

  /** A new view of the same data and shape (its own dispose()). */
  view(): Tensor {
    this.assertAlive('view');
    return new Tensor(this.device, this.storage, this.shape, this.strides, this.offset);
  }

  /** The op that produced this tensor, when gradients flow through it. */
  get gradFn(): GradNode | null {
    return this.node;
  }

  setGradFn(node: GradNode): void {
    this.node = node;
    this.requiresGrad = true;
  }

  /** Accumulated gradient of a leaf after backward(); owned by the tensor (not by any tidy scope). */
  get grad(): Tensor | null {
    return this.gradTensor;
  }

  setGrad(g: Tensor | null): void {
    this.gradTensor = g;
  }

  /** Frees the accumulated gradient. */
  zeroGrad(): void {
    this.gradTensor?.dispose();
    this.gradTensor = null;
  }

  /** Marks this leaf as needing a gradient; returns it. */
  requireGrad(flag = true): this {
    if (this.node && !flag) throw new ShapeError('requireGrad(false) on a tensor computed from tensors that require grad; use detach()');
    this.requiresGrad = flag;
    return this;
  }

  /** A view of the same data that is a leaf without a graph. */
  detach(): Tensor {
    this.assertAlive('detach');
    return new Tensor(this.device, this.storage, this.shape, this.strides, this.offset);
  }

  /** Backpropagates from this scalar (or with an explicit output gradient). */
  backward(grad?: Tensor): void {
    backward(this, grad);
  }

  /** Reads the tensor back as a Float32Array (row-major). */
  async data(): Promise<Float32Array> {
    this.assertAlive('data');
    if (this.size === 0) return new Float32Array(0);
    if (this.isContiguous) {
      const bytes = await this.device.read(this.storage.buffer, this.offset * 4, this.size * 4);
      return new Float32Array(bytes);
    }
    const copy = this.contiguous();
    try {
      return await copy.data();
    } finally {
      copy.dispose();
    }
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new ShapeError(`item: tensor ${shapeStr(this.shape)} has ${this.size} elements, not 1`);
    return (await this.data())[0];
  }

  /** Nested JavaScript arrays in the tensor's shape. */
  async array(): Promise<unknown> {
    const flat = Array.from(await this.data());
    const build = (dim: number, start: number): unknown => {
      if (dim === this.rank) return flat[start];
      const step = sizeOf(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim] }, (_, i) => build(dim + 1, start + i * step));
    };
    return build(0, 0);
  }

  toString(): string {
    return `Tensor${shapeStr(this.shape)}${this.disposed ? ' (disposed)' : ''}`;
  }

  // ---- elementwise ----
  add(other: Tensor | Scalar): Tensor { return ew.add(this, other); }
  sub(other: Tensor | Scalar): Tensor { return ew.sub(this, other); }
  /** value - this */
  rsub(value: Scalar): Tensor { return ew.sub(value, this); }
  mul(other: Tensor | Scalar): Tensor { return ew.mul(this, other); }
  div(other: Tensor | Scalar): Tensor { return ew.div(this, other); }
  pow(other: Tensor | Scalar): Tensor { return ew.pow(this, other); }
  maximum(other: Tensor | Scalar): Tensor { return ew.maximum(this, other); }
  minimum(other: Tensor | Scalar): Tensor { return ew.minimum(this, other); }
  neg(): Tensor { return ew.unary('neg', this); }
  exp(): Tensor { return ew.unary('exp', this); }
  log(): Tensor { return ew.unary('log', this); }
  sqrt(): Tensor { return ew.unary('sqrt', this); }
  rsqrt(): Tensor { return ew.unary('rsqrt', this); }
  abs(): Tensor { return ew.unary('abs', this); }
  sign(): Tensor { return ew.unary('sign', this); }
  square(): Tensor { return ew.unary('square', this); }
  reciprocal(): Tensor { return ew.unary('reciprocal', this); }
  sin(): Tensor { return ew.unary('sin', this); }
  cos(): Tensor { return ew.unary('cos', this); }
  tanh(): Tensor { return ew.unary('tanh', this); }
  sigmoid(): Tensor { return ew.unary('sigmoid', this); }
  relu(): Tensor { return ew.unary('relu', this); }
  gelu(): Tensor { return ew.unary('gelu', this); }
  clamp(min: number, max: number): Tensor { return ew.clamp(this, min, max); }

  // ---- reductions ----
  sum(axes?: number | number[], keepDims = false): Tensor { return red.sum(this, axes, keepDims); }
  mean(axes?: number | number[], keepDims = false): Tensor { return red.mean(this, axes, keepDims); }
  max(axes?: number | number[], keepDims = false): Tensor { return red.max(this, axes, keepDims); }
  min(axes?: number | number[], keepDims = false): Tensor { return red.min(this, axes, keepDims); }

  // ---- shape ----
  reshape(shape: readonly number[]): Tensor { return views.reshape(this, shape); }
  permute(axes: readonly number[]): Tensor { return views.permute(this, axes); }
  transpose(a = -2, b = -1): Tensor { return views.transpose(this, a, b); }
  slice(begin: readonly number[], end?: readonly number[]): Tensor { return views.slice(this, begin, end); }
  narrow(axis: number, start: number, length: number): Tensor { return views.narrow(this, axis, start, length); }
  expand(shape: readonly number[]): Tensor { return views.expand(this, shape); }
  squeeze(axis?: number): Tensor { return views.squeeze(this, axis); }
  unsqueeze(axis: number): Tensor { return views.unsqueeze(this, axis); }
  contiguous(): Tensor { return views.contiguous(this); }

  matmul(other: Tensor): Tensor { return matmul(this, other); }
}
