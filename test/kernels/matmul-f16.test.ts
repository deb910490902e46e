// The matmul kernels with f16 operands (mixed precision: packed two per u32, unpacked to f32, f32
// accumulation), every variant and operand layout, against the f64 CPU reference.
//
// Tolerance: with the operands rounded to f16 on the CPU too (engine/half.ts), only the f32
// accumulation differs, so the f32 kernels' tolerance applies unchanged (atol 4e-6·sqrt(K) + 1e-6,
// rtol 1e-5): the kernel must read every f16 operand exactly. Against the unrounded f32 operands the
// error is the operands' rounding: each product is off by at most 2·2^-11 relative, so the output by at
// most 2^-10·Σ|a·b| (checked per element, with the f32 slack on top).

import { beforeAll, describe, expect, it } from 'vitest';
import { matmulCpu, matmulEpilogueCpu, matmulFused } from '../../kernels/matmul.js';
import { fixedSubgroupSize, matmulPlan, type MatmulEpilogue, type MatmulKernelConfig, type MatmulVariantName } from '../../kernels/matmul-plan.js';
import { matmulKernel } from '../../kernels/matmul-wgsl.js';
import { castToHalf } from '../../kernels/cast.js';
import { roundHalf } from '../../engine/half.js';
import type { Device, Tensor } from '../../engine/node.js';
import { broadcastCpu, expectClose, expectCompiles, getDevice, permuteCpu, seededValues } from '../helpers.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

const tol = (k: number) => ({ atol: 4e-6 * Math.sqrt(Math.max(k, 1)) + 1e-6, rtol: 1e-5 });
const prod = (s: readonly number[]) => s.reduce((x, y) => x * y, 1);
const swapLast = (s: readonly number[]) => [...s.slice(0, -2), s[s.length - 1], s[s.length - 2]];
const swapAxes = (r: number) => [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2];

interface Case { m: number; k: number; n: number; batch?: number[]; aT?: boolean; bT?: boolean; bias?: boolean; gelu?: boolean; residual?: boolean }

/** A logical [..., rows, cols] f16 operand (stored transposed when `t`), with row-major host copies: exact and f16-rounded. */
function operand(shape: number[], t: boolean, seed: number) {
  const stored = t ? swapLast(shape) : shape;
  const data = seededValues(prod(stored), seed, -2, 2);
  const f32 = device.tensor(data, stored);
  const store = castToHalf(f32);
  f32.dispose();
  const tensor = t ? store.transpose() : store;
  const host = t ? permuteCpu(data, stored, swapAxes(stored.length)) : Float64Array.from(data);
  return { tensor, store, host, rounded: host.map(roundHalf) };
}

async function check(variant: MatmulVariantName, c: Case): Promise<MatmulKernelConfig> {
  const { m, k, n } = c;
  const batch = c.batch ?? [];
  const A = operand([...batch, m, k], !!c.aT, 21);
  const B = operand([...batch, k, n], !!c.bT, 22);
  const outShape = [...batch, m, n];
  const biasData = c.bias ? seededValues(n, 23) : undefined;
  const resData = c.residual ? seededValues(prod(outShape), 24) : undefined;
  const epilogue: MatmulEpilogue = {
    bias: biasData && device.tensor(biasData, [n]),
    gelu: c.gelu,
    residual: resData && device.tensor(resData, outShape),
    preActivation: c.gelu,
  };
  const plan = matmulPlan(A.tensor, B.tensor, epilogue, { variant });
  expect(plan.operands).toBe('f16');
  const { out, pre } = matmulFused(A.tensor, B.tensor, epilogue, { variant });
  const bsz = prod(batch);
  const what = `${variant} ${JSON.stringify(c)}`;
  const got = await out.data();
  const ref = matmulEpilogueCpu(matmulCpu(A.rounded, B.rounded, bsz, m, k, n), n, { bias: biasData, gelu: c.gelu, residual: resData });
  expectClose(got, ref.out, tol(k), `${what} out (rounded operands)`);
  if (pre) expectClose(await pre.data(), ref.pre, tol(k), `${what} pre`);
  if (!c.gelu) {
    // Against the exact f32 operands: within the f16 rounding bound.
    const exact = matmulEpilogueCpu(matmulCpu(A.host, B.host, bsz, m, k, n), n, { bias: biasData, residual: resData });
    const absProd = matmulCpu(A.host.map(Math.abs), B.host.map(Math.abs), bsz, m, k, n);
    for (let i = 0; i < got.length; i++) {
      const bound = 2 ** -10 * absProd[i] + tol(k).atol + 1e-5 * Math.abs(exact.out[i]);
      if (!(Math.abs(got[i] - exact.out[i]) <= bound)) throw new Error(`${what}: element ${i} is ${got[i]}, exact ${exact.out[i]}, bound ${bound}`);
    }
  }
  for (const t of [out, pre, A.tensor, A.store, B.tensor, B.store, epilogue.bias, epilogue.residual]) t?.dispose();
  return plan;
}

const VARIANTS: MatmulVariantName[] = ['subgroup', 'register', 'tiled', 'window'];
/** 'subgroup' and 'window' need subgroups of one fixed size. */
const runs = (v: MatmulVariantName) => (v !== 'subgroup' && v !== 'window') || fixedSubgroupSize(device) !== null;

describe.each(VARIANTS)("f16-operand matmul, variant '%s'", (variant) => {
  const supported = () => runs(variant);

  it('every operand layout, K tails, odd shapes', async ({ skip }) => {
    if (!supported()) skip();
    const cases: [Case, [string, string]][] = [
      [{ m: 33, k: 40, n: 36 }, ['k4', 'n4']],
      [{ m: 45, k: 36, n: 50, bT: true }, ['k4', 'k4']], // x·Wᵀ: the linear forward
      [{ m: 64, k: 52, n: 40, aT: true, bT: true }, ['m4', 'k4']],
      [{ m: 68, k: 37, n: 45, aT: true }, ['m4', 'strided']],
      [{ m: 8, k: 12, n: 20, aT: true }, ['m4', 'n4']], // dzᵀ·x: the weight gradient
      [{ m: 37, k: 29, n: 19, aT: true, bT: true }, ['strided', 'strided']],
      [{ m: 9, k: 6, n: 8 }, ['strided', 'n4']],
      [{ m: 5, k: 8, n: 7, aT: true, bT: true }, ['strided', 'k4']],
      [{ m: 1, k: 1, n: 1 }, ['strided', 'strided']],
      [{ m: 197, k: 64, n: 97 }, ['k4', 'strided']],
    ];
    for (const [c, layouts] of cases) {
      const plan = await check(variant, c);
      expect([plan.a, plan.b], JSON.stringify(c)).toEqual(layouts);
    }
  });

  it('batched and transposed, with the fused epilogue', async ({ skip }) => {
    if (!supported()) skip();
    // 'window' packs one B for every batch: its batched cases have a 2-D B of their own (below).
    if (variant !== 'window') {
      await check(variant, { m: 20, k: 16, n: 24, batch: [4], bias: true, residual: true });
      await check(variant, { m: 12, k: 8, n: 20, batch: [3], aT: true, bT: true, gelu: true, bias: true });
      await check(variant, { m: 33, k: 40, n: 36, batch: [2], bias: true, gelu: true, residual: true });
    } else {
      await check(variant, { m: 40, k: 300, n: 70, bT: true, bias: true, gelu: true });
      await check(variant, { m: 33, k: 290, n: 36, aT: true, bias: true, residual: true });
    }
  });
});

it('f16 and f32 kernels are distinct cache entries, and every f16 variant compiles', async () => {
  const a = castToHalf(device.tensor(seededValues(64), [8, 8]));
  const b = castToHalf(device.tensor(seededValues(64), [8, 8]));
  const configs = VARIANTS.filter(runs).map((variant) => matmulPlan(a, b, {}, { variant }));
  const kernels = configs.map(matmulKernel);
  expect(kernels.every((k) => k.name.endsWith(':f16'))).toBe(true);
  await expectCompiles(device, kernels);
  expect(() => matmulFused(a, device.tensor(seededValues(64), [8, 8]))).toThrow(/one element type/);
  a.dispose();
  b.dispose();
});
