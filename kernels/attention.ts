// Fused scaled-dot-product attention, forward and backward, flash-attention style: the N×N score
// matrix never reaches memory. q, k, v, out and their gradients are contiguous f32 [B, H, N, D], with
// D (a multiple of 4) baked into the WGSL; the generated code is fully unrolled over D.
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
//   float per lane), even when every lane reads the same address, while arithmetic runs 8 lanes wide.
//   The streamed rows are the same for every invocation, so with `subgroup` = S > 0 each lane loads a
//   different vec4 of the row and subgroupBroadcast (an extract and a splat there) hands it to the
//   others: S times fewer loads, 5–10× faster than plain loads.
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

import { Tensor } from '../engine/tensor.js';
import { ShapeError } from '../engine/errors.js';
import { shapeStr } from '../engine/shape.js';
import { contiguousInput, type OperandOffset } from './elementwise.js';
import { launch } from './wgsl.js';
import { checkHeadDim, defaultVariants, type AttentionVariant, type AttentionVariants } from './attention-plan.js';
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
 * Mixed precision: q, k and v may be f16 tensors (all three, contiguous, from a vec4 boundary; the
 * attention op casts them so), read packed by the kernels; everything else is f32. Returns whether they are.
 */
function halfQkv(op: string, q: Tensor, k: Tensor, v: Tensor): boolean {
  const half = q.dtype === 'f16';
  for (const t of [q, k, v]) {
    if ((t.dtype === 'f16') !== half) throw new ShapeError(`${op}: q, k and v must have one element type, got ${q.dtype}, ${k.dtype}, ${v.dtype}`);
    if (half && (!t.isContiguous || t.offset % 4 !== 0)) throw new ShapeError(`${op}: an f16 operand ${shapeStr(t.shape)} must be contiguous from a multiple of 4 elements`);
  }
  return half;
}

/** out = softmax(q·kᵀ·scale)·v and lse = logsumexp(q·kᵀ·scale) per row, for q, k, v [B, H, N, D]. */
export function attentionForward(q: Tensor, k: Tensor, v: Tensor, scale: number, variant?: AttentionVariant): { out: Tensor; lse: Tensor } {
  const [b, h, n, d] = checkQkv('attentionForward', q, k, v);
  const device = q.device;
  const vr = variant ?? defaultVariants(device).forward;
  const half = halfQkv('attentionForward', q, k, v);
  const out = Tensor.empty(device, [b, h, n, d]);
  const lse = Tensor.empty(device, [b, h, n]);
  if (out.size === 0) return { out, lse };
  const temps: Tensor[] = [];
  const aligned = (t: Tensor, offset: OperandOffset) => {
    if (t.dtype === 'f16') return t;
    const c = contiguousInput(t, offset);
    temps.push(c);
    return c;
  };
  try {
    const [qc, kc, vc] = [q, k, v].map((t) => aligned(t, 'vec4'));
    launch(
      attentionForwardKernel(d, vr, half),
      { out, lse, q: qc, k: kc, v: vc },
      attentionForwardParams(n, b * h, scale, qc.offset / 4, kc.offset / 4, vc.offset / 4),
      attentionWorkgroups(n, b * h, vr),
      { flops: 4 * b * h * n * n * d, bytes: 4 * (4 * b * h * n * d + b * h * n) },
    );
  } finally {
    for (const t of temps) t.dispose();
  }
  return { out, lse };
}

/** Gradients of attentionForward's `out` with respect to q, k and v, given dOut and the forward's out and lse. */
export function attentionBackward(
  q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dOut: Tensor, scale: number,
  variants?: Pick<AttentionVariants, 'dq' | 'dkv'>,
): { dq: Tensor; dk: Tensor; dv: Tensor } {
  const [b, h, n, d] = checkQkv('attentionBackward', q, k, v, out, dOut);
  lse.assertAlive('attentionBackward');
  if (lse.rank !== 3 || lse.shape[0] !== b || lse.shape[1] !== h || lse.shape[2] !== n) {
    throw new ShapeError(`attentionBackward: lse ${shapeStr(lse.shape)} does not match [B, H, N] of q ${shapeStr(q.shape)}`);
  }
  const device = q.device;
  const vr = variants ?? defaultVariants(device);
  const half = halfQkv('attentionBackward', q, k, v);
  const rowCount = b * h * n;
  const dq = Tensor.empty(device, [b, h, n, d]);
  const dk = Tensor.empty(device, [b, h, n, d]);
  const dv = Tensor.empty(device, [b, h, n, d]);
  if (rowCount === 0) return { dq, dk, dv };
  const temps: Tensor[] = [];
  const aligned = (t: Tensor, offset: OperandOffset) => {
    if (t.dtype === 'f16') return t;
    const c = contiguousInput(t, offset);
    temps.push(c);
    return c;
  };
  try {
    const [qc, kc, vc, oc, gc] = [q, k, v, out, dOut].map((t) => aligned(t, 'vec4'));
    const lc = aligned(lse, 'any');
    const stats = Tensor.empty(device, [b, h, n, 2]);
    temps.push(stats);
    launch(
      attentionRowStatsKernel(d),
      { stats, o: oc, dO: gc, lse: lc },
      attentionRowStatsParams(rowCount, oc.offset / 4, gc.offset / 4, lc.offset),
      attentionRowStatsWorkgroups(rowCount),
      { bytes: 4 * (2 * rowCount * d + 3 * rowCount) },
    );
    const params = attentionBackwardParams(n, b * h, scale, { q: qc.offset / 4, k: kc.offset / 4, v: vc.offset / 4, dOut: gc.offset / 4 });
    const inputs = { q: qc, k: kc, v: vc, dO: gc, stats };
    // FLOPs as executed: dq recomputes q·kᵀ and dO·vᵀ and forms dS·k (3 products); dk, dv recompute
    // both and form Pᵀ·dO and dSᵀ·q (4 products).
    const pairs = 2 * b * h * n * n * d;
    const io = 4 * 4 * b * h * n * d;
    launch(attentionBackwardDqKernel(d, vr.dq, half), { dq, ...inputs }, params, attentionWorkgroups(n, b * h, vr.dq), { flops: 3 * pairs, bytes: io + 4 * b * h * n * d });
    launch(attentionBackwardDkvKernel(d, vr.dkv, half), { dk, dv, ...inputs }, params, attentionWorkgroups(n, b * h, vr.dkv), { flops: 4 * pairs, bytes: io + 8 * b * h * n * d });
  } finally {
    for (const t of temps) t.dispose();
  }
  return { dq, dk, dv };
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
