// Shared test helpers: one real WebGPU device per test file, deterministic data, and closeness checks.

import { createNodeDevice, type Device } from '../engine/node.js';
import type { KernelSource } from '../engine/device.js';
import { mulberry32 } from '../engine/prng.js';
import { readFileSync } from 'node:fs';
import { bytesSource, readHeader, readTensorF32 } from '../models/safetensors.js';

let device: Promise<Device> | null = null;

/** The test file's device (created once, on the real adapter). */
export function getDevice(): Promise<Device> {
  device ??= createNodeDevice();
  return device;
}

/** Deterministic pseudo-random values in [lo, hi) (mulberry32), for test inputs. */
export function seededValues(n: number, seed = 1, lo = -1, hi = 1): Float32Array {
  const rand = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * rand();
  return out;
}

export interface Tolerance {
  /** Absolute tolerance. */
  atol?: number;
  /** Relative tolerance (times |expected|). */
  rtol?: number;
}

/**
 * The attention kernels' tolerances against the f64 reference, shared by every attention kernel test
 * (f32, f16 operands, tuning candidates). Inputs are chosen so that scores have a spread of about ±1.3
 * (q, k in [-2, 2], scale 1/√D; one test uses scale 1, spread ±10): softmax rows are far from uniform
 * and the online rescale matters. Observed worst errors on lavapipe are noted for each.
 * - out: a convex combination of v rows (|v| ≤ 1) accumulated in f32 over N keys, with exp2 of a few
 *   ulp: 1e-5 absolute and relative (observed ≤ 7.4e-7 absolute).
 * - lse: log of a sum of N f32 terms; its size grows with the scores (27 at scale 1), so the relative
 *   part carries it: 1e-5 absolute + 1e-6 relative (observed 2.8e-6 at lse 27.6).
 * - gradients: dS = P∘(dP − Di) subtracts two nearly equal f32 numbers (dP a dot product of length D,
 *   Di a sum over D of out·dOut with out itself a sum over N), and each gradient sums N such terms, so
 *   the error tracks the size of the terms rather than of the (often cancelling) result: 1e-5
 *   absolute + 1e-4 relative (observed ≤ 5.8e-6 absolute for |grad| ≤ 3 at scale 1, ≤ 4e-7 at
 *   scale 1/√D). An indexing or masking error shows up orders of magnitude above either.
 */
export const ATTENTION_TOL: { out: Tolerance; lse: Tolerance; grad: Tolerance } = {
  out: { atol: 1e-5, rtol: 1e-5 },
  lse: { atol: 1e-5, rtol: 1e-6 },
  grad: { atol: 1e-5, rtol: 1e-4 },
};

/**
 * Asserts |actual - expected| <= atol + rtol·|expected| elementwise (NaN must match NaN, ±inf must
 * match exactly) and names the first offending index.
 */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance = {}, what = 'value'): void {
  const atol = tol.atol ?? 1e-6;
  const rtol = tol.rtol ?? 1e-5;
  if (actual.length !== expected.length) {
    throw new Error(`${what}: length ${actual.length} != expected ${expected.length}`);
  }
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(e) || Number.isNaN(a)) {
      if (Number.isNaN(e) !== Number.isNaN(a)) throw new Error(`${what}[${i}]: got ${a}, expected ${e}`);
      continue;
    }
    if (!Number.isFinite(e) || !Number.isFinite(a)) {
      if (a !== e) throw new Error(`${what}[${i}]: got ${a}, expected ${e}`);
      continue;
    }
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (excess > worstExcess) {
      worstExcess = excess;
      worst = i;
    }
  }
  if (worst >= 0) {
    throw new Error(
      `${what}[${worst}]: got ${actual[worst]}, expected ${expected[worst]} ` +
        `(|diff| ${Math.abs(actual[worst] - expected[worst]).toExponential(3)} exceeds atol ${atol} + rtol ${rtol}·|expected|)`,
    );
  }
}

/** Row-major CPU broadcast of `data` with `shape` to `target` (for references). */
export function broadcastCpu(data: ArrayLike<number>, shape: readonly number[], target: readonly number[]): Float64Array {
  const n = target.reduce((a, b) => a * b, 1);
  const out = new Float64Array(n);
  const lead = target.length - shape.length;
  const strides: number[] = [];
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = shape[i] === 1 ? 0 : s;
    s *= shape[i];
  }
  for (let i = 0; i < n; i++) {
    let rem = i;
    let off = 0;
    for (let d = target.length - 1; d >= 0; d--) {
      const c = rem % target[d];
      rem = Math.floor(rem / target[d]);
      if (d >= lead) off += c * strides[d - lead];
    }
    out[i] = data[off];
  }
  return out;
}

/** CPU permute of a contiguous row-major array. */
export function permuteCpu(data: ArrayLike<number>, shape: readonly number[], axes: readonly number[]): Float64Array {
  const outShape = axes.map((a) => shape[a]);
  const inStrides: number[] = [];
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= shape[i];
  }
  const n = data.length;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let rem = i;
    let off = 0;
    for (let d = outShape.length - 1; d >= 0; d--) {
      const c = rem % outShape[d];
      rem = Math.floor(rem / outShape[d]);
      off += c * inStrides[axes[d]];
    }
    out[i] = data[off];
  }
  return out;
}

/**
 * Builds the pipeline of every kernel and waits for the shader compiler: a kernel that fails to
 * compile makes this throw a GpuError naming it. Returns how many distinct kernels were built.
 */
export async function expectCompiles(device: Device, kernels: readonly KernelSource[]): Promise<number> {
  for (const k of kernels) device.pipeline(k);
  await device.sync();
  return new Set(kernels.map((k) => k.source)).size;
}

/** Every tensor of a checkpoint file as f32, with its metadata (for tests that inspect what a run wrote). */
export async function checkpointFile(path: string): Promise<{ tensors: Map<string, Float32Array>; metadata: Record<string, string> }> {
  const src = bytesSource(readFileSync(path), path);
  const h = await readHeader(src);
  const tensors = new Map<string, Float32Array>();
  for (const info of h.tensors.values()) tensors.set(info.name, await readTensorF32(src, info));
  return { tensors, metadata: h.metadata };
}
