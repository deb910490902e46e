// Batched matrix multiply out[b] = act(A[b]·B[b] + bias) + residual over strided operands (transposed
// or broadcast operands are read in place), with the epilogue fused into the store.
//
// Four kernel families, picked per adapter and call (see `defaultMatmulVariant` and `windowFits` in
// kernels/matmul-plan.ts):
// - 'subgroup' (CPU adapters with subgroups, i.e. lavapipe): one workgroup is one subgroup of S lanes
//   and owns `rows` output rows × 4·S·colVecs columns. Lavapipe (Mesa 25) turns every storage-buffer
//   load whose address is not a compile-time constant into a per-lane, bounds-checked scalar loop
//   (about 10 instructions per f32, even when all lanes read the same address), so the cost is the
//   number of load instructions, not bytes. Here each lane loads a different row of the A block and
//   subgroupBroadcast hands the values to all lanes (a register shuffle), so A costs rows/S loads per
//   step instead of rows; B is loaded as one vec4 of 4 columns per lane and k.
// - 'window' (lavapipe, products of Linear size with 4+ row blocks and one B for all batches): the
//   'subgroup' blocking with B read from uniform buffers instead of storage. A uniform load with a
//   lane-varying index is a plain gather in Mesa (extract, load, insert per lane), about a third of
//   the instructions of the storage path; but a uniform binding holds 64 KiB. So B is first packed
//   into column tiles of 4·S·colVecs columns, 64 KiB per WINDOW_VEC4S / (S·colVecs) values of k (256
//   at S = 16, colVecs 1), and each dispatch covers one column tile with up to (uniform buffers per
//   stage − 1) windows bound, one copy of the k-loop per window (a branch choosing the window per
//   block cost more than it saved). K beyond that is done in passes that add to the output; the
//   epilogue runs in the last. On the ViT-B products this is 1.05–1.3× the 'subgroup' kernel
//   (bench/RESULTS.md).
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
import type { KernelWork } from '../engine/profile-report.js';
import type { PooledBuffer, UniformWindow } from '../engine/buffer-pool.js';
import { MAX_WORKGROUPS_PER_DIM, launch } from './wgsl.js';
import { planMatmul, type MatmulEpilogue, type MatmulKernelConfig, type MatmulOperand, type MatmulOptions } from './matmul-plan.js';
import { matmulKernel, matmulPackKernel, matmulPackParams, matmulParams, matmulWorkgroups, packMode, windowPacking, PACK_K4_BLOCK } from './matmul-wgsl.js';

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
    launchMatmul(p.config, buffers, { rows: p.rows, n: p.n, k: p.k, batches: p.batches, a: opA, b: opB, biasOffset, residualOffset }, work);
  } finally {
    for (const t of temps) t.dispose();
  }
  return { out, pre };
}

/** A product as the kernels see it: rows (batches folded in where they can be), operand strides, epilogue offsets. */
export interface MatmulLaunch {
  rows: number;
  n: number;
  k: number;
  batches: number;
  a: MatmulOperand;
  b: MatmulOperand;
  biasOffset: number;
  residualOffset: number;
  /** 'window': false packs B for this call only, never keeping it (the tuner: timings must include the pack). */
  keepPack?: boolean;
}

/**
 * Records the dispatches of one product with configuration `config` into `buffers` (out, a, b, and
 * bias, residual, pre as the configuration uses them). The autotuner times its candidates through this.
 *
 * 'window' records a pack of B into 64 KiB column-tile windows, then per pass over K (as many windows
 * as the device lets one dispatch bind) one dispatch per column tile, each binding that tile's windows
 * as uniform buffers; passes after the first add to the output, and only the last applies the epilogue.
 */
export function launchMatmul(config: MatmulKernelConfig, buffers: Readonly<Record<string, Tensor>>, call: MatmulLaunch, work?: KernelWork): void {
  const { rows, n, k, batches } = call;
  if (config.variant !== 'window') {
    launch(matmulKernel(config), buffers, matmulParams(rows, n, k, call.a, call.b, call.biasOffset, call.residualOffset), matmulWorkgroups(config, rows, n, batches), work);
    return;
  }
  const device = buffers.out.device;
  const pk = windowPacking(k, n, config.lanes * config.colVecs);
  const half = config.operands === 'f16';
  // 'k4' writes blocks of 4 k's per invocation: kPadded (whole windows) must be a multiple of them.
  const read = packMode(k, n, call.b, half);
  const mode = read === 'k4' && pk.kPadded % PACK_K4_BLOCK !== 0 ? 'strided' : read;
  const pack = matmulPackParams(k, n, call.b, config.lanes * config.colVecs, mode);
  if (pack.workgroups.some((g) => g > MAX_WORKGROUPS_PER_DIM)) {
    throw new ShapeError(`matmul: packing B [${k}, ${n}] for the 'window' variant needs ${pack.workgroups.join('×')} workgroups, over the ${MAX_WORKGROUPS_PER_DIM} per dimension WebGPU allows; pass { variant: 'subgroup' }`);
  }
  // The pack of an unchanged B (a weight in inference) is kept from its second use on (engine/derived.ts).
  const source = buffers.b.storage.buffer;
  const packKey = `matmul_pack_b:${half ? 'f16' : 'f32'}:${pack.params.join(',')}`;
  const fill = (into: PooledBuffer) => device.dispatch(matmulPackKernel(half, mode), [into, source], pack.params, pack.workgroups, { bytes: pk.floats * 4 + (half ? 2 : 4) * k * n });
  const { buffer: packed, temporary } = device.derived.get(source, packKey, pk.floats * 4, fill, call.keepPack ?? true);
  try {
    const windows = config.windows ?? 1;
    const passes = Math.ceil(pk.kPadded / pk.windowK / windows);
    const windowBytes = pk.windowK * pk.tileCols * 4;
    for (let pass = 0; pass < passes; pass++) {
      const last = pass === passes - 1;
      const passConfig: MatmulKernelConfig = {
        ...config,
        accIn: pass > 0,
        bias: last && config.bias,
        gelu: last && config.gelu,
        residual: last && config.residual,
        pre: last && config.pre,
      };
      const kernel = matmulKernel(passConfig);
      const kStart = pass * windows * pk.windowK;
      const kCount = Math.min(k, kStart + windows * pk.windowK) - kStart;
      const storageList = kernel.bindings.filter((name) => !name.startsWith('bw')).map((name) => {
        const t = buffers[name];
        if (!t) throw new ShapeError(`matmul: kernel ${kernel.name} needs a buffer "${name}"`);
        return t.storage.buffer;
      });
      const groups = matmulWorkgroups(passConfig, rows, n, batches);
      for (let t = 0; t < pk.tiles; t++) {
        const col0 = t * pk.tileCols;
        const list: (PooledBuffer | UniformWindow)[] = [...storageList];
        for (let w = 0; w < windows; w++) {
          // Windows past the packed k (a last pass with fewer) repeat its last one: bound, never read.
          const kw = Math.min(kStart + w * pk.windowK, pk.kPadded - pk.windowK);
          list.push({ window: packed, offset: ((t * pk.kPadded + kw) / pk.windowK) * windowBytes, size: windowBytes });
        }
        const cols = Math.min(pk.tileCols, n - col0);
        const tileWork = work && { flops: 2 * batches * rows * kCount * cols };
        device.dispatch(kernel, list, matmulParams(rows, n, k, call.a, call.b, call.biasOffset, call.residualOffset, { kStart, kCount, col0 }), groups, tileWork);
      }
    }
  } finally {
    if (temporary) device.release(packed);
  }
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
