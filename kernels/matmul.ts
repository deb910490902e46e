// Batched matrix multiply out[b] = act(A[b]·B[b] + bias) + residual over strided operands (transposed
// or broadcast operands are read in place), with the epilogue fused into the store.
//
// Three kernel families, picked per adapter (see `defaultMatmulVariant`
// in kernels/matmul-plan.ts):
// - 'subgroup' (CPU adapters with subgroups, i.e. lavapipe): one workgroup is one subgroup of S lanes
//   and owns `rows` output rows × 4·S·colVecs columns. Lavapipe (Mesa 25) turns every storage-buffer
//   load whose address is not a compile-time constant into a per-lane, bounds-checked scalar loop
//   (about 10 instructions per f32, even when all lanes read the same address), so the cost is the
//   number of load instructions, not bytes. Here each lane loads a different row of the A block and
//   subgroupBroadcast hands the values to all lanes (a register shuffle), so A costs rows/S loads per
//   step instead of rows; B is loaded as one vec4 of 4 columns per lane and k.
// - 'register': the same blocking without subgroups (every lane loads the A rows itself).
// - 'tiled': for real GPUs, 64×64 tiles staged in workgroup memory by a 16×16 workgroup, 4×4 outputs
//   per invocation. Barriers are slow on lavapipe (coroutine switches), so it is never picked there.
//
// Operand layouts, picked per call from the strides: A 'k4' (contiguous along k: vec4 loads along k),
// 'm4' (contiguous along m, e.g. Xᵀ in dW = Xᵀ·dY: vec4 loads along m), or 'strided' (scalar loads);
// B 'n4' (contiguous along n), 'k4' (contiguous along k: Wᵀ of a Linear weight stored [N, K]), or
// 'strided'. Nothing is transposed in memory.
//
// Out-of-range rows and columns are clamped to the last valid one for loading and not stored; with
// K % 4 != 0 (only in layouts that allow it) k is clamped too and the values past K are zeroed.
//
// This file: the launcher and the CPU references. The variant and layout choice is in
// kernels/matmul-plan.ts, the WGSL generators in kernels/matmul-wgsl.ts.

import { Tensor } from '../engine/tensor.js';
import { ShapeError } from '../engine/errors.js';
import { shapeStr } from '../engine/shape.js';
import { ELEMENTWISE_OPS, contiguousInput } from './elementwise.js';
import { MAX_WORKGROUPS_PER_DIM, launch } from './wgsl.js';
import { planMatmul, type MatmulEpilogue, type MatmulOptions } from './matmul-plan.js';
import { matmulKernel, matmulParams, matmulWorkgroups } from './matmul-wgsl.js';

/**
 * act(a·b + bias) + residual for a [..., M, K] and b [..., K, N] with broadcast batch axes. Transposed
 * and broadcast views are read in place; only batch axes that don't flatten to one stride are copied.
 * `pre` (when asked for) holds a·b + bias.
 */
export function matmulFused(a: Tensor, b: Tensor, epilogue: MatmulEpilogue = {}, options: MatmulOptions = {}): { out: Tensor; pre?: Tensor } {
  const p = planMatmul(a, b, epilogue, options);
  const device = a.device;
  const out = Tensor.empty(device, p.outShape);
  const pre = epilogue.preActivation ? Tensor.empty(device, p.outShape) : undefined;
  if (out.size === 0) return { out, pre };

  const temps: Tensor[] = [];
  /** `t` broadcast to `shape` as a contiguous tensor (the kernel takes its offset). */
  const packed = (t: Tensor, shape: readonly number[]): Tensor => {
    const c = contiguousInput(t, 'any', shape);
    temps.push(c);
    return c;
  };
  try {
    const srcA = p.a.copy ? packed(a, [...p.batch, p.m, p.k]) : a;
    const srcB = p.b.copy ? packed(b, [...p.batch, p.k, p.n]) : b;
    const buffers: Record<string, Tensor> = { out, a: srcA, b: srcB };
    let biasOffset = 0;
    let residualOffset = 0;
    if (epilogue.bias) {
      const bt = packed(epilogue.bias, [p.n]);
      buffers.bias = bt;
      biasOffset = bt.offset;
    }
    if (epilogue.residual) {
      const rt = packed(epilogue.residual, p.outShape);
      buffers.residual = rt;
      residualOffset = rt.offset;
    }
    if (pre) buffers.pre = pre;
    const groups = matmulWorkgroups(p.config, p.rows, p.n, p.batches);
    if (groups.some((g) => g > MAX_WORKGROUPS_PER_DIM)) {
      throw new ShapeError(`matmul: ${shapeStr(p.outShape)} needs ${groups.join('×')} workgroups, over the ${MAX_WORKGROUPS_PER_DIM} per dimension WebGPU allows; split the batch or the rows`);
    }
    const opA = { ...p.a.op, offset: srcA.offset };
    const opB = { ...p.b.op, offset: srcB.offset };
    // Work: 2 FLOPs per multiply-add; bytes: each operand read once and the output written (the least traffic).
    const operandBytes = p.config.operands === 'f16' ? 2 : 4;
    const work = { flops: 2 * p.batches * p.rows * p.k * p.n, bytes: operandBytes * (srcA.size + srcB.size) + 4 * out.size * (epilogue.residual ? 2 : 1) };
    launch(matmulKernel(p.config), buffers, matmulParams(p.rows, p.n, p.k, opA, opB, biasOffset, residualOffset), groups, work);
  } finally {
    for (const t of temps) t.dispose();
  }
  return { out, pre };
}

// ---- CPU references ----

/** CPU reference in f64: A [batch, M, K] · B [batch, K, N], both contiguous. */
export function matmulCpu(a: ArrayLike<number>, b: ArrayLike<number>, batch: number, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(batch * m * n);
  for (let t = 0; t < batch; t++) {
    for (let i = 0; i < m; i++) {
      for (let p = 0; p < k; p++) {
        const av = a[t * m * k + i * k + p];
        for (let j = 0; j < n; j++) c[t * m * n + i * n + j] += av * b[t * k * n + p * n + j];
      }
    }
  }
  return c;
}

/**
 * CPU reference of the epilogue on a [batch, M, N] product: returns act(x + bias) + residual and the
 * pre-activation x + bias (residual is [batch, M, N] or absent, bias [N] or absent).
 */
export function matmulEpilogueCpu(
  x: ArrayLike<number>,
  n: number,
  opts: { bias?: ArrayLike<number>; gelu?: boolean; residual?: ArrayLike<number> },
): { out: Float64Array; pre: Float64Array } {
  const out = new Float64Array(x.length);
  const pre = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    let y = x[i] + (opts.bias ? opts.bias[i % n] : 0);
    pre[i] = y;
    if (opts.gelu) y = ELEMENTWISE_OPS.gelu.cpu([y]);
    if (opts.residual) y += opts.residual[i];
    out[i] = y;
  }
  return { out, pre };
}
