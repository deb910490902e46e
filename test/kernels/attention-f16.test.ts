// The attention kernels with f16 q, k, v (mixed precision: packed two per u32, f32 math), default and
// other variants, forward and backward, against the f64 CPU reference; and the attention op in mixed.
//
// Tolerance: the CPU reference gets q, k, v rounded to f16 exactly as the GPU reads them
// (engine/half.ts), so only f32 arithmetic differs and the f32 kernels' tolerances apply unchanged
// (ATTENTION_TOL in test/helpers.ts: out 1e-5, lse 1e-5 + 1e-6 relative, gradients 1e-5 + 1e-4 relative).

import { beforeAll, describe, expect, it } from 'vitest';
import { attentionBackward, attentionBackwardCpu, attentionCpu, attentionForward } from '../../kernels/attention.js';
import { PLAIN_VARIANTS, subgroupWidth, type AttentionVariants } from '../../kernels/attention-plan.js';
import { castToHalf } from '../../kernels/cast.js';
import { roundHalf } from '../../engine/half.js';
import { withPrecision } from '../../engine/precision.js';
import { attention, type Device, type Tensor } from '../../engine/node.js';
import { ATTENTION_TOL, expectClose, getDevice, seededValues } from '../helpers.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

// The f32 kernels' tolerances, unchanged (ATTENTION_TOL in test/helpers.ts): the references round q, k
// and v to f16 exactly where the kernels do, so the f16 operands cost nothing more.
const { out: OUT_TOL, lse: LSE_TOL, grad: GRAD_TOL } = ATTENTION_TOL;

async function check(b: number, h: number, n: number, d: number, scale: number, seed: number, variants?: AttentionVariants) {
  const shape = [b, h, n, d];
  const size = b * h * n * d;
  const [qv, kv, vv] = [seededValues(size, seed, -2, 2), seededValues(size, seed + 1, -2, 2), seededValues(size, seed + 2)];
  const gv = seededValues(size, seed + 3);
  const [q, k, v] = [qv, kv, vv].map((x) => {
    const f = device.tensor(x, shape);
    const hf = castToHalf(f);
    f.dispose();
    return hf;
  });
  const g = device.tensor(gv, shape);
  const { out, lse } = attentionForward(q, k, v, scale, variants?.forward);
  const { dq, dk, dv } = attentionBackward(q, k, v, out, lse, g, scale, variants);
  const [o, l, gq, gk, gvv] = await Promise.all([out, lse, dq, dk, dv].map((t) => t.data()));
  const [qr, kr, vr] = [qv, kv, vv].map((x) => Float64Array.from(x, roundHalf));
  const ref = attentionCpu(qr, kr, vr, b, h, n, d, scale);
  expectClose(o, ref.out, OUT_TOL, 'out');
  expectClose(l, ref.lse, LSE_TOL, 'lse');
  const grads = attentionBackwardCpu(qr, kr, vr, gv, b, h, n, d, scale);
  expectClose(gq, grads.dq, GRAD_TOL, 'dq');
  expectClose(gk, grads.dk, GRAD_TOL, 'dk');
  expectClose(gvv, grads.dv, GRAD_TOL, 'dv');
  for (const t of [q, k, v, g, out, lse, dq, dk, dv] as Tensor[]) t.dispose();
}

describe('attention kernels with f16 q, k, v', () => {
  it.for<[number, number, number, number]>([
    [2, 3, 7, 64],
    [1, 2, 65, 32],
    [2, 1, 33, 16],
  ])('default variants, [%i, %i, %i, %i]', async ([b, h, n, d]) => {
    await check(b, h, n, d, 1 / Math.sqrt(d), 5);
  });

  it('plain loads and wider subgroup variants', async () => {
    await check(2, 1, 45, 4, 0.8, 9, PLAIN_VARIANTS);
    const s = subgroupWidth(device);
    if (s) {
      const v = { wg: 3 * s, rows: 2, keyBlock: 3, subgroup: s };
      await check(2, 1, 45, 4, 0.8, 10, { forward: v, dq: v, dkv: v });
    }
  });

  it('mixed f16 operands must be f16 all three, and contiguous', () => {
    const shape = [1, 1, 4, 8];
    const f = device.tensor(seededValues(32), shape);
    const hq = castToHalf(f);
    expect(() => attentionForward(hq, f, f, 1)).toThrow(/one element type/);
    hq.dispose();
    f.dispose();
  });
});

it('the attention op in mixed: keeps f16 q, k, v for backward; within the f16 rounding of the f32 op', async () => {
  const [b, h, n, d] = [1, 2, 9, 16];
  const size = b * h * n * d;
  const vals = [seededValues(size, 1, -2, 2), seededValues(size, 2, -2, 2), seededValues(size, 3)];
  const run = async (precision: 'f32' | 'mixed') => {
    const [q, k, v] = vals.map((x) => device.tensor(x, [b, n, h, d]).requireGrad());
    // q, k, v arrive as permuted views, as in the ViT.
    const out = withPrecision(precision, () => attention(q.permute([0, 2, 1, 3]), k.permute([0, 2, 1, 3]), v.permute([0, 2, 1, 3])));
    const dtypes = out.gradFn!.saved.slice(0, 3).map((t) => t.dtype);
    out.mul(device.tensor(seededValues(size, 4), [b, h, n, d])).sum().backward();
    const res = { out: await out.data(), dq: await q.grad!.data(), dtypes };
    for (const t of [q, k, v, out]) t.dispose();
    return res;
  };
  const f32 = await run('f32');
  const mixed = await run('mixed');
  expect(f32.dtypes).toEqual(['f32', 'f32', 'f32']);
  expect(mixed.dtypes).toEqual(['f16', 'f16', 'f16']);
  // Inputs of size ≤ 2 rounded by ≤ 2^-11 relative move scores by ≤ 2·2·2·D·2^-11/√D ≈ 0.03 here, the
  // softmax weights by about as much relative: 5e-2 covers out and dq; equality would mean f16 was not used.
  expectClose(mixed.out, f32.out, { atol: 5e-2, rtol: 0 }, 'out mixed vs f32');
  expectClose(mixed.dq, f32.dq, { atol: 5e-2, rtol: 5e-2 }, 'dq mixed vs f32');
  expect(Array.from(mixed.out)).not.toEqual(Array.from(f32.out));
});

it('attentionQkv in mixed: f16 projection kept for backward; output and qkv gradient match the CPU on f16-rounded q, k, v', async () => {
  const { attentionQkv } = await import('../../engine/node.js');
  const [b, n, h, d] = [2, 9, 2, 8];
  const w = h * d;
  const qkvValues = seededValues(b * n * 3 * w, 11, -2, 2);
  const upstream = seededValues(b * n * w, 12);
  const qkv = device.tensor(qkvValues, [b, n, 3 * w]).requireGrad();
  const out = withPrecision('mixed', () => attentionQkv(qkv, h));
  expect(out.gradFn!.saved[0].dtype).toBe('f16');
  out.mul(device.tensor(upstream, [b, n, w])).sum().backward();
  // Heads [B, H, N, D] of part p (0 q, 1 k, 2 v) of the rounded projection, and back.
  const r = Float64Array.from(qkvValues, roundHalf);
  const headsOf = (src: ArrayLike<number>, part: number, cols: number, off: number) => {
    const o = new Float64Array(b * h * n * d);
    for (let bi = 0; bi < b; bi++) for (let hi = 0; hi < h; hi++) for (let ni = 0; ni < n; ni++) for (let di = 0; di < d; di++) {
      o[((bi * h + hi) * n + ni) * d + di] = src[(bi * n + ni) * cols + off + part * w + hi * d + di];
    }
    return o;
  };
  const [q, k, v] = [0, 1, 2].map((p) => headsOf(r, p, 3 * w, 0));
  const scale = 1 / Math.sqrt(d);
  const ref = attentionCpu(q, k, v, b, h, n, d, scale).out;
  const got = await out.data();
  expectClose(headsOf(got, 0, w, 0), ref, OUT_TOL, 'attentionQkv out');
  const g = attentionBackwardCpu(q, k, v, headsOf(upstream, 0, w, 0), b, h, n, d, scale);
  const dqkv = await qkv.grad!.data();
  expectClose(headsOf(dqkv, 0, 3 * w, 0), g.dq, GRAD_TOL, 'dq');
  expectClose(headsOf(dqkv, 1, 3 * w, 0), g.dk, GRAD_TOL, 'dk');
  expectClose(headsOf(dqkv, 2, 3 * w, 0), g.dv, GRAD_TOL, 'dv');
  qkv.dispose();
  out.dispose();
});
