// GPU-resident tensors, f32 (and, for mixed precision's matmul operands, f16 stored two per u32 word:
// engine/half.ts; only the cast kernels and the matmul read them). A Tensor is a view (shape, strides, element offset) on a reference-counted
// Storage; views (reshape of contiguous data, permute, slice, expand) share storage, and the buffer goes
// back to the pool when the last view is disposed.
//
// The op methods (x.add(y), x.matmul(w), x.sum(), x.reshape(...), x.backward(), ...) are not written
// here: engine/ops/index.ts attaches them in one place, so this file imports no op (and no op imports
// back into it in a circle).

import type { Device } from './device.js';
import type { PooledBuffer } from './buffer-pool.js';
import { DisposedError, ShapeError } from './errors.js';
import { trackInScope } from './scope.js';
import { contiguousStrides, isContiguous, shapeStr, sizeOf, type Shape } from './shape.js';
import { unpackHalves } from './half.js';

/** Element type of a tensor's storage: f32, or f16 packed two per u32 word. */
export type DType = 'f32' | 'f16';

/** Bytes of `size` elements of `dtype` (f16: whole u32 words). */
export function storageBytes(size: number, dtype: DType): number {
  return dtype === 'f16' ? Math.ceil(size / 2) * 4 : size * 4;
}

/**
 * Gradient of an op: receives the tensors it saved and the output's gradient, returns one gradient per
 * input (null where none flows).
 */
export type BackwardRule = (grad: Tensor, saved: readonly Tensor[]) => readonly (Tensor | null | undefined)[];

/**
 * The node of the autograd graph that produced a tensor (made by engine/autograd.ts's record()).
 *
 * A node goes away without backward() too: when the tensor it produced is disposed and no later node
 * refers to it, it releases its saved tensors and lets go of its inputs' nodes in turn. So a forward
 * pass inside tidy() frees its graph with its tensors.
 */
export class GradNode {
  /** Number of later nodes that have this node's output among their inputs. */
  consumers = 0;
  ownerDisposed = false;
  released = false;

  constructor(
    readonly name: string,
    readonly inputs: readonly Tensor[],
    /** Views that keep the data the rule needs alive (untracked by scopes). */
    readonly saved: readonly Tensor[],
    readonly rule: BackwardRule,
  ) {
    for (const t of inputs) if (t.gradFn) t.gradFn.consumers++;
  }

  /**
   * Frees what this node holds. With `cascade`, input nodes nobody needs any more are released too;
   * backward() passes false, as it visits (and releases) every node of the graph itself.
   */
  release(cascade = true): void {
    if (this.released) return;
    this.released = true;
    for (const s of this.saved) s.dispose();
    for (const t of this.inputs) {
      const n = t.gradFn;
      if (n) {
        n.consumers--;
        if (cascade) n.maybeRelease();
      }
    }
  }

  maybeRelease(): void {
    if (this.ownerDisposed && this.consumers <= 0) this.release();
  }
}

export class Storage {
  private refs = 0;

  constructor(readonly device: Device, readonly buffer: PooledBuffer, readonly dtype: DType = 'f32') {}

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
  static empty(device: Device, shape: Shape, dtype: DType = 'f32'): Tensor {
    return new Tensor(device, new Storage(device, device.allocate(storageBytes(Math.max(1, sizeOf(shape)), dtype)), dtype), shape);
  }

  /** Element type (views share their storage's). */
  get dtype(): DType {
    return this.storage.dtype;
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

  /** Reads the tensor back as a Float32Array (row-major). */
  async data(): Promise<Float32Array> {
    this.assertAlive('data');
    if (this.size === 0) return new Float32Array(0);
    if (this.dtype === 'f16') {
      if (!this.isContiguous) throw new ShapeError(`data: f16 tensor ${shapeStr(this.shape)} is a strided view; cast it to f32 first`);
      const first = this.offset & ~1;
      const words = new Uint32Array(await this.device.read(this.storage.buffer, first * 2, storageBytes(this.offset + this.size - first, 'f16')));
      return unpackHalves(words, this.offset - first, this.size);
    }
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
    return `Tensor${shapeStr(this.shape)}${this.dtype === 'f16' ? ' f16' : ''}${this.disposed ? ' (disposed)' : ''}`;
  }
}
