// Fused scaled-dot-product attention, forward and backward, flash-attention style: the N×N score
// matrix never reaches memory. q, k, v, out and their gradients are f32 [B, H, N, D] with contiguous
// rows, read and written in place through their strides (so the heads of a fused [B, N, 3·H·D] qkv
// projection need no copies, and the output can be written tokens-major, [B, N, H·D]), with D (a
// multiple of 4) baked into the WGSL; the generated code is fully unrolled over D.
//
// Forward: one invocation owns `rows` query rows; their q rows (pre-multiplied by scale·log2 e, so
// every exponential is a bare exp2) and output accumulators stay in private memory while the key and
// value rows stream past, `keyBlock` at a time, with the online-softmax rescale once per block. The
// per-row log-sum-exp (natural log, of the scaled scores) is written for the backward.
//
// Backward (FlashAttention-2 without atomics): a small kernel packs (lse·log2 e, Di = rowsum(dOut∘out))
// per row; then one kernel loops over the keys per query row for dQ, and one loops over the queries per
// key row for dK and dV, both recomputing p = exp(s·scale − lse). That computes s and dP twice (7
// D-length products per (i, j) pair instead of 5) but needs neither N×N scratch nor atomics.
//
// Why the code looks the way it does (lavapipe, Mesa 25, measured with bench/lab/attention.lab.ts):
// - Each storage load is a per-lane scalar gather with a bounds check and a branch (~3 cycles per
//   float per lane), even when every lane reads the same address, while arithmetic runs 8 or 16 lanes
//   wide (256- or 512-bit vectors).
//   The streamed rows are the same for every invocation, so with `subgroup` = S > 0 each lane loads a
//   different vec4 of the row and subgroupBroadcast (an extract and a splat there) hands it to the
//   others: S times fewer loads, 5–10× faster than plain loads. At 16 lanes the backward kernels
//   broadcast 16 wide (a 64-wide row in one vec4 per lane); the forward keeps 8 (attention-plan.ts).
// - More rows per invocation amortize those loads further (forward: 2 rows are ~30% faster than 1),
//   but LLVM's compile time grows steeply with the private state (2·D·rows floats and more): a D = 64
//   forward compiles in seconds with 2 rows and takes tens of seconds with 3 or 4. The defaults stop
//   where the gain stops paying for the compile; lavapipe caches compiled shaders on disk.
// - Key blocks beyond 1 added register pressure and no speed.
// Invocations never return early (rows past N are clamped and only their stores are skipped), so every
// subgroup is full for the broadcasts. On GPUs without subgroups the plain variants read the rows
// directly, which their caches broadcast anyway.
//
// This file: the launchers and the CPU references. The variants are chosen in
// kernels/attention-plan.ts, the WGSL is generated in kernels/attention-wgsl.ts.

import type { Device } from '../engine/device.js';
import { Tensor } from '../engine/tensor.js';
import { ShapeError } from '../engine/errors.js';
import { shapeStr } from '../engine/shape.js';
import { contiguousInput } from './elementwise.js';
import { launch } from './wgsl.js';
import { attentionVariant, checkHeadDim, type AttentionVariant, type AttentionVariants } from './attention-plan.js';
import type { HeadLayout } from './attention-wgsl.js';
import {
  attentionBackwardDkvKernel, attentionBackwardDqKernel, attentionBackwardParams, attentionForwardKernel, attentionForwardParams,
  attentionRowStatsKernel, attentionRowStatsParams, attentionRowStatsWorkgroups, attentionWorkgroups,
} from './attention-wgsl.js';

// ---- launchers ----

function checkQkv(op: string, q: Tensor, ...others: Tensor[]): [number, number, number, number] {
  q.assertAlive(op);
  if (q.rank !== 4) throw new ShapeError(`${op}: q must be [B, H, N, D], got ${shapeStr(q.shape)}`);
  for (const t of others) {
    t.assertAlive(op);
    if (t.device !== q.device) throw new ShapeError(`${op}: operands live on different devices`);
    if (t.rank !== 4 || t.shape.some((s, i) => s !== q.shape[i])) {
      throw new ShapeError(`${op}: operand ${shapeStr(t.shape)} does not match q ${shapeStr(q.shape)}`);
    }
  }
  const [b, h, n, d] = q.shape;
  checkHeadDim(d);
  return [b, h, n, d];
}

/**
 * Mixed precision: q, k and v may be f16 tensors (all three, read in place: kernels/cast.ts makes
 * contiguous ones), which the kernels read packed; everything else is f32. Returns whether they are.
 */
function halfQkv(op: string, q: Tensor, k: Tensor, v: Tensor): boolean {
  const half = q.dtype === 'f16';
  for (const t of [q, k, v]) {
    if ((t.dtype === 'f16') !== half) throw new ShapeError(`${op}: q, k and v must have one element type, got ${q.dtype}, ${k.dtype}, ${v.dtype}`);
    if (half && !headLayout(t)) throw new ShapeError(`${op}: an f16 operand ${shapeStr(t.shape)} must have contiguous rows from multiples of 4 elements`);
  }
  return half;
}

/**
 * The layout (in vec4s) of a [B, H, N, D] view the kernels read or write in place: D contiguous, the
 * offset and the other strides multiples of 4 (size-1 axes don't count). Null when it needs a copy.
 * Heads sliced out of a fused qkv projection ([B, N, 3, H, D] permuted) qualify.
 */
export function headLayout(t: Tensor): HeadLayout | null {
  const [b, h, n] = t.shape;
  const [sb, sh, sn, sd] = t.strides;
  const st = [b === 1 ? 0 : sb, h === 1 ? 0 : sh, n === 1 ? 0 : sn];
  if (sd !== 1 || t.offset % 4 !== 0 || st.some((s) => s < 0 || s % 4 !== 0)) return null;
  return { offset: t.offset / 4, batch: st[0] / 4, head: st[1] / 4, row: st[2] / 4 };
}

/** Operands read in place where their layout allows, else through contiguous copies (disposed by the caller). */
class Operands {
  readonly temps: Tensor[] = [];

  constructor(private readonly device: Device) {}

  read(t: Tensor): { t: Tensor; l: HeadLayout } {
    const l = headLayout(t);
    if (l) return { t, l };
    const c = contiguousInput(t, 'vec4');
    this.temps.push(c);
    return { t: c, l: headLayout(c)! };
  }

  /** A destination given by the caller (checked), or a new contiguous [B, H, N, D] tensor. */
  write(op: string, shape: readonly number[], dest?: Tensor): { t: Tensor; l: HeadLayout } {
    if (!dest) {
      const t = Tensor.empty(this.device, [...shape]);
      return { t, l: headLayout(t)! };
    }
    dest.assertAlive(op);
    const l = headLayout(dest);
    if (!l || dest.shape.some((s, i) => s !== shape[i])) throw new ShapeError(`${op}: destination ${shapeStr(dest.shape)} must be a [B, H, N, D] view with contiguous rows`);
    return { t: dest, l };
  }

  dispose(): void {
    for (const t of this.temps) t.dispose();
  }
}

/**
 * out = softmax(q·kᵀ·scale)·v and lse = logsumexp(q·kᵀ·scale) per row, for q, k, v [B, H, N, D] (views
 * read in place where their strides allow). `out` may be given: a [B, H, N, D] view with contiguous
 * rows (e.g. heads of a [B, N, H·D] buffer, so that no permuting copy follows); it is returned.
 */
export function attentionForward(q: Tensor, k: Tensor, v: Tensor, scale: number, variant?: AttentionVariant, out?: Tensor): { out: Tensor; lse: Tensor } {
  const [b, h, n, d] = checkQkv('attentionForward', q, k, v);
  const device = q.device;
  const vr = variant ?? attentionVariant(device, { kernel: 'forward', bh: b * h, n, d });
  const half = halfQkv('attentionForward', q, k, v);
  const ops = new Operands(device);
  const o = ops.write('attentionForward', q.shape, out);
  const lse = Tensor.empty(device, [b, h, n]);
  if (o.t.size === 0) return { out: o.t, lse };
  try {
    const [qc, kc, vc] = [q, k, v].map((t) => ops.read(t));
    launch(
      attentionForwardKernel(d, vr, half),
      { out: o.t, lse, q: qc.t, k: kc.t, v: vc.t },
      attentionForwardParams(n, b * h, h, scale, { q: qc.l, k: kc.l, v: vc.l, out: o.l }),
      attentionWorkgroups(n, b * h, vr),
      { flops: 4 * b * h * n * n * d, bytes: 4 * (4 * b * h * n * d + b * h * n) },
    );
  } finally {
    ops.dispose();
  }
  return { out: o.t, lse };
}

/** Where attentionBackward writes: dq, and dk and dv (which must share one storage). */
export interface AttentionGradDest {
  dq: Tensor;
  dk: Tensor;
  dv: Tensor;
}

/**
 * Gradients of attentionForward's `out` with respect to q, k and v, given dOut and the forward's out and
 * lse. Inputs are read in place where their strides allow. `dest` may give the three gradients'
 * places ([B, H, N, D] views with contiguous rows; dk and dv in one storage, e.g. the heads of a fused
 * qkv gradient); by default dq is a new tensor and dk, dv are views of one new [2, B, H, N, D] buffer.
 */
export function attentionBackward(
  q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dOut: Tensor, scale: number,
  variants?: Pick<AttentionVariants, 'dq' | 'dkv'>, dest?: AttentionGradDest,
): { dq: Tensor; dk: Tensor; dv: Tensor } {
  const [b, h, n, d] = checkQkv('attentionBackward', q, k, v, out, dOut);
  lse.assertAlive('attentionBackward');
  if (lse.rank !== 3 || lse.shape[0] !== b || lse.shape[1] !== h || lse.shape[2] !== n) {
    throw new ShapeError(`attentionBackward: lse ${shapeStr(lse.shape)} does not match [B, H, N] of q ${shapeStr(q.shape)}`);
  }
  const device = q.device;
  const call = { bh: b * h, n, d };
  const vr = variants ?? { dq: attentionVariant(device, { kernel: 'dq', ...call }), dkv: attentionVariant(device, { kernel: 'dkv', ...call }) };
  const halfOperands = halfQkv('attentionBackward', q, k, v);
  const rowCount = b * h * n;
  const ops = new Operands(device);
  let dkvDest = dest ? { dk: dest.dk, dv: dest.dv } : null;
  if (!dkvDest) {
    const both = Tensor.empty(device, [2, b, h, n, d]);
    const half = b * h * n * d;
    const strides = [h * n * d, n * d, d, 1];
    dkvDest = { dk: new Tensor(device, both.storage, [b, h, n, d], strides, 0), dv: new Tensor(device, both.storage, [b, h, n, d], strides, half) };
    both.dispose();
  } else if (dest!.dk.storage !== dest!.dv.storage) {
    throw new ShapeError('attentionBackward: dest.dk and dest.dv must share one storage (they are written through one binding)');
  }
  const dq = ops.write('attentionBackward', q.shape, dest?.dq);
  const dk = ops.write('attentionBackward', q.shape, dkvDest.dk);
  const dv = ops.write('attentionBackward', q.shape, dkvDest.dv);
  if (rowCount === 0) return { dq: dq.t, dk: dk.t, dv: dv.t };
  try {
    const [qc, kc, vc, oc, gc] = [q, k, v, out, dOut].map((t) => ops.read(t));
    const lc = contiguousInput(lse, 'any');
    ops.temps.push(lc);
    const stats = Tensor.empty(device, [b, h, n, 2]);
    ops.temps.push(stats);
    launch(
      attentionRowStatsKernel(d),
      { stats, o: oc.t, dO: gc.t, lse: lc },
      attentionRowStatsParams(rowCount, n, h, lc.offset, oc.l, gc.l),
      attentionRowStatsWorkgroups(rowCount),
      { bytes: 4 * (2 * rowCount * d + 3 * rowCount) },
    );
    const layouts = { q: qc.l, k: kc.l, v: vc.l, dOut: gc.l };
    const inputs = { q: qc.t, k: kc.t, v: vc.t, dO: gc.t, stats };
    // FLOPs as executed: dq recomputes q·kᵀ and dO·vᵀ and forms dS·k (3 products); dk, dv recompute
    // both and form Pᵀ·dO and dSᵀ·q (4 products).
    const pairs = 2 * b * h * n * n * d;
    const io = 4 * 4 * b * h * n * d;
    launch(attentionBackwardDqKernel(d, vr.dq, halfOperands), { dq: dq.t, ...inputs }, attentionBackwardParams(n, b * h, h, scale, { ...layouts, out1: dq.l, out2: dq.l }),
      attentionWorkgroups(n, b * h, vr.dq), { flops: 3 * pairs, bytes: io + 4 * b * h * n * d });
    launch(attentionBackwardDkvKernel(d, vr.dkv, halfOperands), { dkv: dk.t, ...inputs }, attentionBackwardParams(n, b * h, h, scale, { ...layouts, out1: dk.l, out2: dv.l }),
      attentionWorkgroups(n, b * h, vr.dkv), { flops: 4 * pairs, bytes: io + 8 * b * h * n * d });
  } finally {
    ops.dispose();
  }
  return { dq: dq.t, dk: dk.t, dv: dv.t };
}

// ---- CPU references (f64) ----

/** out = softmax(q·kᵀ·scale)·v and lse per row, for flat contiguous [B, H, N, D] inputs. */
export function attentionCpu(
  q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, B: number, H: number, N: number, D: number, scale: number,
): { out: Float64Array; lse: Float64Array } {
  const out = new Float64Array(B * H * N * D);
  const lse = new Float64Array(B * H * N);
  const s = new Float64Array(N);
  for (let bh = 0; bh < B * H; bh++) {
    const base = bh * N * D;
    for (let i = 0; i < N; i++) {
      let m = -Infinity;
      for (let j = 0; j < N; j++) {
        let dot = 0;
        for (let c = 0; c < D; c++) dot += q[base + i * D + c] * k[base + j * D + c];
        s[j] = dot * scale;
        m = Math.max(m, s[j]);
      }
      let l = 0;
      for (let j = 0; j < N; j++) l += (s[j] = Math.exp(s[j] - m));
      for (let j = 0; j < N; j++) {
        const p = s[j] / l;
        for (let c = 0; c < D; c++) out[base + i * D + c] += p * v[base + j * D + c];
      }
      lse[bh * N + i] = m + Math.log(l);
    }
  }
  return { out, lse };
}

/**
 * Gradients of Σ out∘dOut with respect to q, k, v, the textbook way: the full softmax row P, then
 * dP = dOut·vᵀ, dS = P∘(dP − rowsum(P∘dP)).
 */
export function attentionBackwardCpu(
  q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, dOut: ArrayLike<number>,
  B: number, H: number, N: number, D: number, scale: number,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const dq = new Float64Array(B * H * N * D);
  const dk = new Float64Array(B * H * N * D);
  const dv = new Float64Array(B * H * N * D);
  const p = new Float64Array(N);
  const dp = new Float64Array(N);
  for (let bh = 0; bh < B * H; bh++) {
    const base = bh * N * D;
    for (let i = 0; i < N; i++) {
      const qi = base + i * D;
      let m = -Infinity;
      for (let j = 0; j < N; j++) {
        let dot = 0;
        for (let c = 0; c < D; c++) dot += q[qi + c] * k[base + j * D + c];
        p[j] = dot * scale;
        m = Math.max(m, p[j]);
      }
      let l = 0;
      for (let j = 0; j < N; j++) l += (p[j] = Math.exp(p[j] - m));
      let pdp = 0;
      for (let j = 0; j < N; j++) {
        p[j] /= l;
        let dot = 0;
        for (let c = 0; c < D; c++) dot += dOut[qi + c] * v[base + j * D + c];
        dp[j] = dot;
        pdp += p[j] * dot;
      }
      for (let j = 0; j < N; j++) {
        const ds = p[j] * (dp[j] - pdp) * scale;
        const kj = base + j * D;
        for (let c = 0; c < D; c++) {
          dq[qi + c] += ds * k[kj + c];
          dk[kj + c] += ds * q[qi + c];
          dv[kj + c] += p[j] * dOut[qi + c];
        }
      }
    }
  }
  return { dq, dk, dv };
}
