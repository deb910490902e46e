// Which matmul kernel runs: the variant per adapter, the operand layouts per call (from the strides),
// the blocking, and how batch axes map onto the launch. Everything chosen here goes into the kernel's
// configuration, and so into its cache key (kernels/matmul-wgsl.ts generates the source from it).
// Why the variants and layouts are what they are: kernels/matmul.ts.

import type { Device } from '../engine/device.js';
import type { Tensor } from '../engine/tensor.js';
import { ShapeError } from '../engine/errors.js';
import { broadcastShapes, broadcastStrides, collapseDims, shapeStr, sizeOf } from '../engine/shape.js';
import { fixedSubgroupSize } from './wgsl.js';

export type MatmulVariantName = 'subgroup' | 'register' | 'tiled' | 'window';
export type MatmulALayout = 'k4' | 'm4' | 'strided';
export type MatmulBLayout = 'n4' | 'k4' | 'strided';

/** Every template parameter of a matmul kernel (all of it goes into the cache key). */
export interface MatmulKernelConfig {
  variant: MatmulVariantName;
  /** Output rows per workgroup ('subgroup', 'register'); a multiple of `lanes` for 'subgroup'. */
  rows: number;
  /** Groups of 4 columns per invocation ('subgroup', 'register'). */
  colVecs: number;
  /** Invocations per workgroup ('subgroup': the subgroup size; 'register': any). */
  lanes: number;
  a: MatmulALayout;
  b: MatmulBLayout;
  /** K % 4 != 0: blocks of 4 k's clamp k and zero the values past K. */
  kTail: boolean;
  bias: boolean;
  gelu: boolean;
  residual: boolean;
  /** Also store the pre-activation value (x·w + bias). */
  pre: boolean;
  /** 'f16': both operands are f16 tensors, read packed two per u32 and accumulated in f32 (absent: f32). */
  operands?: 'f16';
  /** 'window': uniform windows of packed B bound per dispatch (each covers `windowK` values of k). */
  windows?: number;
  /** 'window': this pass adds its partial sums to what `out` holds (a later pass over K). */
  accIn?: boolean;
}

export interface MatmulEpilogue {
  /** Added per output column: a [N] tensor. */
  bias?: Tensor;
  /** Exact (erf) GELU after the bias. */
  gelu?: boolean;
  /** Added after the activation; its shape must broadcast to the output's. */
  residual?: Tensor;
  /** Also return the value before the activation (x·w + bias), as the backward of GELU needs it. */
  preActivation?: boolean;
}

/** Overrides for benchmarks and tests; by default everything is chosen per adapter and shape. */
export interface MatmulOptions {
  variant?: MatmulVariantName;
  rows?: number;
  colVecs?: number;
  /** Invocations per workgroup of the 'register' variant. */
  lanes?: number;
  /** Read both operands with scalar strided loads (disables the vec4 layouts). */
  forceStrided?: boolean;
  /** 'window': at most this many uniform windows per pass (default: what the device allows). */
  windows?: number;
}

/** Strides of one operand, in elements, as the kernel sees them. */
export interface MatmulOperand {
  offset: number;
  batchStride: number;
  rowStride: number;
  colStride: number;
}


/** The 'tiled' blocking: TILE×TILE outputs per workgroup of TILE_WG×TILE_WG invocations. */
export const TILE = 64;
export const TILE_WG = 16;

/**
 * The 'window' variant: B is packed per column tile of 4·S·colVecs columns into 64 KiB uniform
 * windows (4096 vec4s), each holding WINDOW_VEC4S / (S·colVecs) values of k (256 at S = 16, 1 vec4).
 */
export const WINDOW_VEC4S = 4096;
/** Values of k one window holds for a tile of 4·`tileVec4s` columns (lanes × column vec4s). */
export const windowK = (tileVec4s: number): number => WINDOW_VEC4S / tileVec4s;
/** Smallest product (rows·k·n multiply-adds) for which the rules pick 'window': packing B costs a pass over it. */
export const WINDOW_MIN_MACS = 2 ** 22;

// ---- variant choice ----

/** What the variant choice asks of a device (a Device has them; tests pass stand-ins). */
export type MatmulDeviceCaps = Pick<Device, 'isCpuAdapter' | 'subgroups' | 'name'> & Partial<Pick<Device, 'info'>>;

/** The subgroup size when the device has subgroups of one fixed size the 'subgroup' kernel can use. */
export { fixedSubgroupSize };

/** 'tiled' on GPUs; on CPU adapters 'subgroup' where a fixed subgroup size allows it, else 'register'. */
export function defaultMatmulVariant(device: Pick<Device, 'isCpuAdapter' | 'subgroups'>): MatmulVariantName {
  if (!device.isCpuAdapter) return 'tiled';
  return fixedSubgroupSize(device) ? 'subgroup' : 'register';
}

/** Layout of A [M, K] from its strides (size-1 axes have stride 0 here). */
export function aLayout(op: MatmulOperand, k: number): MatmulALayout {
  const aligned = op.offset % 4 === 0 && op.batchStride % 4 === 0;
  if (aligned && op.colStride === 1 && k % 4 === 0 && op.rowStride % 4 === 0) return 'k4';
  if (aligned && op.rowStride === 1 && op.colStride % 4 === 0) return 'm4';
  return 'strided';
}

/** Layout of B [K, N] from its strides (size-1 axes have stride 0 here). */
export function bLayout(op: MatmulOperand, k: number): MatmulBLayout {
  const aligned = op.offset % 4 === 0 && op.batchStride % 4 === 0;
  if (aligned && op.colStride === 1 && op.rowStride % 4 === 0) return 'n4';
  if (aligned && op.rowStride === 1 && k % 4 === 0 && op.colStride % 4 === 0) return 'k4';
  return 'strided';
}

/**
 * Default blocking (see bench/lab/matmul.lab.ts): 'subgroup' 32 rows (S, 2S for a short M, so few
 * distinct kernels get compiled), 'register' 8 rows (4 for a short M).
 */
function defaultRows(variant: MatmulVariantName, m: number, lanes: number): number {
  if (variant === 'subgroup') {
    // 32 rows at 8 lanes; 64 at 16 (lavapipe at 512 bits: 1.3x the ViT-B step of 32, bench/RESULTS.md).
    const full = lanes === 16 ? 64 : Math.max(lanes, Math.floor(32 / lanes) * lanes);
    return m <= lanes ? lanes : m <= 2 * lanes ? Math.min(2 * lanes, full) : full;
  }
  return m <= 4 ? 4 : 8;
}

/** The shape of a call as the kernel sees it (rows may hold folded batches). */
export interface MatmulShape {
  rows: number;
  k: number;
  n: number;
  batches: number;
  a: MatmulOperand;
  b: MatmulOperand;
}

/**
 * Whether the rules pick 'window' (see kernels/matmul.ts): a CPU adapter with one fixed subgroup
 * size, one B for every batch (a Linear weight, or activations in dW), a product big enough that
 * packing B pays, and rows for at least 4 workgroups (a dispatch covers one column tile: with fewer
 * row blocks than that, cores would sit idle).
 */
export function windowFits(device: MatmulDeviceCaps, shape: MatmulShape): boolean {
  const s = fixedSubgroupSize(device);
  if (!device.isCpuAdapter || !s || (shape.batches > 1 && shape.b.batchStride !== 0)) return false;
  return shape.rows * shape.k * shape.n >= WINDOW_MIN_MACS && shape.rows >= 4 * defaultRows('subgroup', shape.rows, s);
}

/**
 * Column vec4s per lane for 'window': 2 (tiles of 128 columns, windows of half the k's) at 16 lanes
 * where N fills such a tile and K needs no more passes than with 1; else 1. In the ViT-B/16 step on
 * lavapipe at 512 bits that is the K = 768 products (the forward's qkv, proj and fc1, and dX of proj
 * and fc2). Alternated runs put the forward 5% faster and the train step 4% (medians of 7 pairs).
 * With 2 everywhere (extra passes for K = 1576 and 3072) the gain was smaller and less steady
 * (bench/RESULTS.md, "The matmul's ceiling on lavapipe"). At 8 lanes it was not measured.
 */
export function windowColVecs(lanes: number, n: number, k: number, windowsPerPass: number): number {
  if (lanes !== 16 || n < 8 * lanes) return 1;
  const passes = (colVecs: number) => Math.ceil(Math.max(1, Math.ceil(k / windowK(lanes * colVecs))) / windowsPerPass);
  return passes(2) === passes(1) ? 2 : 1;
}

/** Uniform windows one 'window' pass may bind: the device's uniform buffers per stage, less the params. */
export function maxWindows(device: MatmulDeviceCaps): number {
  return Math.max(1, (device.info?.limits.maxUniformBuffersPerShaderStage ?? 12) - 1);
}

export function matmulConfig(
  device: MatmulDeviceCaps,
  shape: MatmulShape,
  epilogue: { bias: boolean; gelu: boolean; residual: boolean; pre: boolean },
  options: MatmulOptions = {},
): MatmulKernelConfig {
  const { rows: m, k, a, b } = shape;
  const variant = options.variant ?? (windowFits(device, shape) ? 'window' : defaultMatmulVariant(device));
  let lanes = options.lanes ?? 8;
  if (variant === 'subgroup' || variant === 'window') {
    const s = fixedSubgroupSize(device);
    if (!s) throw new ShapeError(`matmul: the '${variant}' variant needs a fixed subgroup size (adapter ${device.name})`);
    lanes = s;
  }
  if (variant === 'window' && shape.batches > 1 && b.batchStride !== 0) {
    throw new ShapeError(`matmul: the 'window' variant needs one B for all ${shape.batches} batches`);
  }
  let al = options.forceStrided ? 'strided' : aLayout(a, k);
  const bl = options.forceStrided ? 'strided' : bLayout(b, k);
  if (variant === 'tiled') lanes = TILE_WG * TILE_WG;
  const rows = variant === 'tiled' ? TILE : options.rows ?? defaultRows(variant === 'window' ? 'subgroup' : variant, m, lanes);
  // 'window': at most this many windows per pass over K (the device's limit, or fewer if asked).
  const windowCap = Math.max(1, Math.min(options.windows ?? maxWindows(device), maxWindows(device)));
  const colVecs = variant === 'tiled' ? TILE / 4 : options.colVecs ?? (variant === 'window' ? windowColVecs(lanes, shape.n, k, windowCap) : 1);
  if ((variant === 'subgroup' || variant === 'window') && rows % lanes !== 0) throw new ShapeError(`matmul: rows ${rows} must be a multiple of the subgroup size ${lanes}`);
  if (variant === 'register' && al === 'm4' && rows % 4 !== 0) al = 'strided';
  const kTail = k % 4 !== 0;
  const config: MatmulKernelConfig = { variant, rows, colVecs, lanes, a: al, b: bl, kTail, ...epilogue };
  if (variant === 'window') {
    if (WINDOW_VEC4S % (lanes * colVecs) !== 0) throw new ShapeError(`matmul: 'window' tiles of ${lanes}×${colVecs} vec4s don't divide a window of ${WINDOW_VEC4S}`);
    const total = Math.max(1, Math.ceil(k / windowK(lanes * colVecs)));
    config.windows = Math.ceil(total / Math.ceil(total / windowCap));
  }
  return config;
}

// ---- autotuning hook ----

/** A call as the autotuner sees it (kernels/matmul-tune.ts): the kernel's shape and strides, and the epilogue. */
export interface MatmulCall extends MatmulShape {
  flags: { bias: boolean; gelu: boolean; residual: boolean; pre: boolean };
}

/** Set by kernels/matmul-tune.ts: the blocking for a call given no options, or null for the rules above. */
export const matmulTuning: { choose: ((device: Device, call: MatmulCall) => MatmulOptions | null) | null } = { choose: null };

// ---- launch plan ----

/** Batch stride of `t` (rank >= 2) over `batch` as one number, or null when its batch axes don't flatten. */
function flatBatchStride(t: Tensor, batch: readonly number[]): number | null {
  const st = broadcastStrides(t.shape.slice(0, -2), t.strides.slice(0, -2), batch, 'matmul');
  const c = collapseDims(batch, [st]);
  if (c.shape.length === 0) return 0;
  if (c.shape.length === 1) return c.strides[0][0];
  return null;
}

/**
 * How `t` is read: its strides, or (when its batch axes don't flatten to one stride) those of the
 * contiguous copy the launcher makes. Strides of size-1 axes are 0, which keeps the layout tests simple.
 */
function operandOf(t: Tensor, batch: readonly number[]): { op: MatmulOperand; copy: boolean } {
  const r = t.rank;
  const rows = t.shape[r - 2];
  const cols = t.shape[r - 1];
  const single = sizeOf(batch) === 1;
  const bs = flatBatchStride(t, batch);
  if (bs === null) {
    return { op: { offset: 0, batchStride: single ? 0 : rows * cols, rowStride: rows === 1 ? 0 : cols, colStride: cols === 1 ? 0 : 1 }, copy: true };
  }
  return {
    op: {
      offset: t.offset,
      batchStride: single ? 0 : bs,
      rowStride: rows === 1 ? 0 : t.strides[r - 2],
      colStride: cols === 1 ? 0 : t.strides[r - 1],
    },
    copy: false,
  };
}

export interface MatmulLaunchPlan {
  m: number;
  k: number;
  n: number;
  batch: number[];
  outShape: number[];
  /** Rows and batches as the kernel sees them (the batch may be folded into the rows). */
  rows: number;
  batches: number;
  a: { op: MatmulOperand; copy: boolean };
  b: { op: MatmulOperand; copy: boolean };
  config: MatmulKernelConfig;
}

export function planMatmul(a: Tensor, b: Tensor, epilogue: MatmulEpilogue, options: MatmulOptions): MatmulLaunchPlan {
  a.assertAlive('matmul');
  b.assertAlive('matmul');
  if (a.rank < 2 || b.rank < 2) throw new ShapeError(`matmul: operands must have at least two axes, got ${shapeStr(a.shape)} · ${shapeStr(b.shape)}`);
  if (a.device !== b.device) throw new ShapeError('matmul: operands live on different devices');
  const [m, k] = a.shape.slice(-2);
  const [k2, n] = b.shape.slice(-2);
  if (k !== k2) throw new ShapeError(`matmul: inner dimensions differ: ${shapeStr(a.shape)} · ${shapeStr(b.shape)}`);
  const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), 'matmul');
  const outShape = [...batch, m, n];
  const { bias, residual } = epilogue;
  if (bias) {
    bias.assertAlive('matmul bias');
    if (bias.rank !== 1 || bias.shape[0] !== n) throw new ShapeError(`matmul: bias ${shapeStr(bias.shape)} must be [${n}]`);
  }
  if (residual) {
    residual.assertAlive('matmul residual');
    if (broadcastShapes(residual.shape, outShape, 'matmul residual').join() !== outShape.join()) {
      throw new ShapeError(`matmul: residual ${shapeStr(residual.shape)} does not broadcast to the output ${shapeStr(outShape)}`);
    }
  }
  let A = operandOf(a, batch);
  const B = operandOf(b, batch);
  let rows = m;
  let batches = sizeOf(batch);
  // x [B, T, K] · W [K, N]: when A's rows run on across batches, fold the batch into the rows
  // ([B·T, K]), so each batch's last block of rows isn't mostly padding (the output is laid out alike).
  if (batches > 1 && b.rank === 2 && !A.copy && (m === 1 || A.op.batchStride === m * A.op.rowStride)) {
    A = { op: { ...A.op, rowStride: m === 1 ? A.op.batchStride : A.op.rowStride, batchStride: 0 }, copy: false };
    rows = batches * m;
    batches = 1;
  }
  const flags = { bias: !!bias, gelu: !!epilogue.gelu, residual: !!residual, pre: !!epilogue.preActivation };
  if (a.dtype !== b.dtype) throw new ShapeError(`matmul: operands must have one element type, got ${a.dtype} · ${b.dtype}`);
  if (a.dtype === 'f16' && (A.copy || B.copy)) {
    throw new ShapeError(`matmul: f16 operands ${shapeStr(a.shape)} · ${shapeStr(b.shape)} have batch axes that need a copy; make them contiguous before the cast`);
  }
  const untouched = Object.values(options).every((v) => v === undefined);
  const tuned = untouched ? matmulTuning.choose?.(a.device, { rows, k, n, batches, a: A.op, b: B.op, flags }) : null;
  const config = matmulConfig(a.device, { rows, k, n, batches, a: A.op, b: B.op }, flags, tuned ?? options);
  if (a.dtype === 'f16') config.operands = 'f16';
  return { m, k, n, batch, outShape, rows, batches, a: A, b: B, config };
}

/** The kernel configuration `matmulFused` would use for these arguments (for tests and the lab). */
export function matmulPlan(a: Tensor, b: Tensor, epilogue: MatmulEpilogue = {}, options: MatmulOptions = {}): MatmulKernelConfig {
  return planMatmul(a, b, epilogue, options).config;
}

