// Every candidate of every tunable kernel's search space (kernels/matmul-tune.ts,
// kernels/attention-tune.ts, kernels/layernorm-tune.ts), forced one at a time, against the f64 CPU references at the kernels'
// own tolerances (test/kernels/matmul.test.ts, test/kernels/attention.test.ts say why they are what
// they are): a tuned choice may change speed, never results beyond them.

import { beforeAll, describe, expect, it } from 'vitest';
import { matmulCpu, matmulEpilogueCpu, matmulFused } from '../../kernels/matmul.js';
import { matmulPlan } from '../../kernels/matmul-plan.js';
import { MATMUL_FAMILY, matmulCandidateId, matmulCandidateOptions, matmulSearchSpace } from '../../kernels/matmul-tune.js';
import { attentionBackward, attentionBackwardCpu, attentionCpu, attentionForward } from '../../kernels/attention.js';
import { ATTENTION_FAMILIES, attentionCandidateVariant, attentionSearchSpace } from '../../kernels/attention-tune.js';
import { defaultVariants } from '../../kernels/attention-plan.js';
import { Tensor, type Device } from '../../engine/node.js';
import { layerNormBackwardKernel, layerNormCpu, layerNormForwardKernel, layerNormParams } from '../../kernels/layernorm.js';
import { layerNormCandidate, layerNormSearchSpace } from '../../kernels/layernorm-tune.js';
import { launch, rowWorkgroups } from '../../kernels/wgsl.js';
import { ATTENTION_TOL, expectClose, getDevice, permuteCpu, seededValues } from '../helpers.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

const prod = (s: readonly number[]) => s.reduce((x, y) => x * y, 1);

interface MatmulCase {
  m: number;
  k: number;
  n: number;
  batch?: number;
  aT?: boolean;
  bT?: boolean;
  bias?: boolean;
  gelu?: boolean;
  residual?: boolean;
  pre?: boolean;
}

/** A [batch, rows, cols] operand stored transposed when `t`, and its row-major host copy. */
function operand(batch: number, rows: number, cols: number, t: boolean, seed: number): { tensor: Tensor; host: Float64Array; store: Tensor } {
  const stored = t ? [batch, cols, rows] : [batch, rows, cols];
  const data = seededValues(prod(stored), seed);
  const store = device.tensor(data, stored);
  return { tensor: t ? store.transpose() : store, host: t ? permuteCpu(data, stored, [0, 2, 1]) : Float64Array.from(data), store };
}

async function checkMatmul(id: string, c: MatmulCase): Promise<void> {
  const batch = c.batch ?? 1;
  const { m, k, n } = c;
  const A = operand(batch, m, k, !!c.aT, 21);
  const B = operand(batch, k, n, !!c.bT, 22);
  const biasData = c.bias ? seededValues(n, 23) : undefined;
  const resData = c.residual ? seededValues(batch * m * n, 24) : undefined;
  const epilogue = {
    bias: biasData && device.tensor(biasData, [n]),
    gelu: c.gelu,
    residual: resData && device.tensor(resData, [batch, m, n]),
    preActivation: c.pre,
  };
  const options = matmulCandidateOptions(id);
  const plan = matmulPlan(A.tensor, B.tensor, epilogue, options);
  expect(matmulCandidateId(plan)).toBe(id);
  const { out, pre } = matmulFused(A.tensor, B.tensor, epilogue, options);
  const ref = matmulEpilogueCpu(matmulCpu(A.host, B.host, batch, m, k, n), n, { bias: biasData, gelu: c.gelu, residual: resData });
  // As test/kernels/matmul.test.ts: f32 dot products of length K, the f32 erf, the epilogue's roundings.
  const tol = { atol: 4e-6 * Math.sqrt(Math.max(k, 1)) + 1e-6, rtol: 1e-5 };
  const what = `${id} ${JSON.stringify(c)} (a-${plan.a} b-${plan.b})`;
  expectClose(await out.data(), ref.out, tol, `${what} out`);
  if (c.pre) expectClose(await pre!.data(), ref.pre, tol, `${what} pre`);
  for (const t of [out, pre, A.tensor, A.store, B.tensor, B.store, epilogue.bias, epilogue.residual]) t?.dispose();
}

/** Odd sizes that leave partial workgroups for every blocking, in each operand layout and with the epilogue. */
const MATMUL_CASES: MatmulCase[] = [
  { m: 70, k: 40, n: 300, bias: true, gelu: true, pre: true, residual: true }, // a-k4 b-n4
  { m: 68, k: 37, n: 45, aT: true }, // a-m4 with a k tail, b strided
  { m: 45, k: 36, n: 50, bT: true, bias: true }, // a-k4 b-k4 (x·Wᵀ)
  { m: 19, k: 21, n: 23, batch: 3, bT: true, bias: true, gelu: true }, // strided both, batched
];

describe('matmul: every tuning candidate matches the CPU reference', () => {
  it('the search space holds the rule and is small', () => {
    const space = matmulSearchSpace(device);
    expect(space.length).toBeGreaterThanOrEqual(9);
    expect(space.length).toBeLessThanOrEqual(16);
    const call = { rows: 64, k: 64, n: 64, batches: 1, a: { offset: 0, batchStride: 0, rowStride: 64, colStride: 1 }, b: { offset: 0, batchStride: 0, rowStride: 64, colStride: 1 }, flags: { bias: false, gelu: false, residual: false, pre: false } };
    expect(MATMUL_FAMILY.candidates(device, call)).toContain(MATMUL_FAMILY.rule(device, call));
    // Candidates over the adapter's limits are left out: 16 invocations allow neither 32 lanes nor 'tiled'.
    const small = matmulSearchSpace({ subgroups: null, info: { limits: { maxComputeInvocationsPerWorkgroup: 16 } } } as unknown as Device);
    expect(small).toEqual(['register.r4.c1.l8', 'register.r4.c2.l8', 'register.r8.c1.l8', 'register.r8.c2.l8']);
  });

  it.for(matmulSearchSpace({ subgroups: null, info: { limits: {} } } as unknown as Device).concat(['subgroup']))(
    '%s',
    { timeout: 300_000 },
    async (id, { skip }) => {
      // The space on this device decides which ids exist (subgroup ids depend on its subgroup size).
      const ids = id === 'subgroup' ? matmulSearchSpace(device).filter((x) => x.startsWith('subgroup')) : [id];
      if (!ids.length) skip();
      for (const cid of ids) for (const c of MATMUL_CASES) await checkMatmul(cid, c);
    },
  );
});

// The attention kernels' tolerances (ATTENTION_TOL in test/helpers.ts).
const { out: OUT_TOL, lse: LSE_TOL, grad: GRAD_TOL } = ATTENTION_TOL;

describe('attention: every tuning candidate matches the CPU reference (forward, dQ, dK·dV)', () => {
  it('the search space holds the rules', () => {
    const space = attentionSearchSpace(device);
    const call = { kernel: 'forward' as const, bh: 4, n: 37, d: 8 };
    for (const kind of ['forward', 'dq', 'dkv'] as const) expect(ATTENTION_FAMILIES[kind].candidates(device, { ...call, kernel: kind })).toContain(ATTENTION_FAMILIES[kind].rule(device, call));
    expect(space.length).toBeLessThanOrEqual(16);
    expect(defaultVariants(device)).toBeDefined();
  });

  it.for(attentionIdsOfAnyDevice())('%s', { timeout: 300_000 }, async (id, { skip }) => {
    if (!attentionSearchSpace(device).includes(id)) skip();
    const v = attentionCandidateVariant(id);
    const [b, h, n, d, scale] = [1, 2, 37, 8, 1 / Math.sqrt(8)];
    const size = b * h * n * d;
    const [qd, kd, vd, gd] = [seededValues(size, 31, -2, 2), seededValues(size, 32, -2, 2), seededValues(size, 33), seededValues(size, 34)];
    const [q, k, vv, g] = [qd, kd, vd, gd].map((x) => device.tensor(x, [b, h, n, d]));
    const { out, lse } = attentionForward(q, k, vv, scale, v);
    const { dq, dk, dv } = attentionBackward(q, k, vv, out, lse, g, scale, { dq: v, dkv: v });
    const ref = attentionCpu(qd, kd, vd, b, h, n, d, scale);
    const grads = attentionBackwardCpu(qd, kd, vd, gd, b, h, n, d, scale);
    expectClose(await out.data(), ref.out, OUT_TOL, `${id} out`);
    expectClose(await lse.data(), ref.lse, LSE_TOL, `${id} lse`);
    expectClose(await dq.data(), grads.dq, GRAD_TOL, `${id} dq`);
    expectClose(await dk.data(), grads.dk, GRAD_TOL, `${id} dk`);
    expectClose(await dv.data(), grads.dv, GRAD_TOL, `${id} dv`);
    for (const t of [q, k, vv, g, out, lse, dq, dk, dv]) t.dispose();
  });
});

/**
 * The attention spaces of devices with subgroups of 4 (SwiftShader), 8 or 16 (lavapipe at 256 or 512
 * bits) or 32, for naming the tests before the device exists; ids this device lacks are skipped.
 */
function attentionIdsOfAnyDevice(): string[] {
  const dev = (s: number) => ({ subgroups: { minSize: s, maxSize: s }, info: { limits: {} } }) as unknown as Device;
  return [...new Set([4, 8, 16, 32].flatMap((s) => attentionSearchSpace(dev(s))))];
}

/** f64 dx of layerNorm for dy, from the definition: rstd · (g − mean(g) − x̂ · mean(g · x̂)), g = dy · γ. */
function layerNormDxCpu(x: ArrayLike<number>, dy: ArrayLike<number>, gamma: ArrayLike<number>, rows: number, d: number, eps: number): Float64Array {
  const { mean, rstd } = layerNormCpu(x, gamma, new Float64Array(d), rows, d, eps);
  const dx = new Float64Array(rows * d);
  for (let r = 0; r < rows; r++) {
    let sg = 0;
    let sgx = 0;
    for (let j = 0; j < d; j++) {
      const g = dy[r * d + j] * gamma[j];
      sg += g;
      sgx += g * (x[r * d + j] - mean[r]) * rstd[r];
    }
    for (let j = 0; j < d; j++) {
      const g = dy[r * d + j] * gamma[j];
      const xh = (x[r * d + j] - mean[r]) * rstd[r];
      dx[r * d + j] = rstd[r] * (g - sg / d - (xh * sgx) / d);
    }
  }
  return dx;
}

describe('layerNorm: every tuning candidate (tree widths, one subgroup) matches the CPU reference', () => {
  // The trees, and one subgroup at each fixed size an adapter may have (those of this one run).
  const ids = [...layerNormSearchSpace({ info: { limits: {} } } as unknown as Device), 'sg8', 'sg16', 'sg32', 'sg64'];
  it.for(ids)('%s', async (id, { skip }) => {
    if (!layerNormSearchSpace(device).includes(id)) skip();
    const wg = layerNormCandidate(id);
    for (const [rows, d] of [[7, 33], [5, 257], [3, 768], [4, 1]]) {
      // Forward on values near 100 (the two-pass variance): test/kernels/layernorm.test.ts's tolerance.
      const xd = seededValues(rows * d, 51, 99, 101);
      const gd = seededValues(d, 52, 0.5, 1.5);
      const bd = seededValues(d, 53);
      const dyd = seededValues(rows * d, 54);
      const [x, gamma, beta, dy] = [device.tensor(xd, [rows, d]), device.tensor(gd), device.tensor(bd), device.tensor(dyd, [rows, d])];
      const [y, stats, dx] = [Tensor.empty(device, [rows, d]), Tensor.empty(device, [rows, 2]), Tensor.empty(device, [rows, d])];
      launch(layerNormForwardKernel(wg), { y, stats, x, gamma, beta }, layerNormParams(rows, d, 1e-5), rowWorkgroups(rows));
      launch(layerNormBackwardKernel(wg), { dx, dy, x, gamma, stats }, layerNormParams(rows, d), rowWorkgroups(rows));
      expectClose(await y.data(), layerNormCpu(xd, gd, bd, rows, d, 1e-5).y, { atol: 2e-4, rtol: 1e-4 }, `${id} [${rows}, ${d}] y`);
      // dx: x̂ carries the same ~1e-5 relative error from x − mean in f32 as y; the row sums of g and
      // g·x̂ add sqrt(D)·eps of terms of size 1, far below.
      expectClose(await dx.data(), layerNormDxCpu(xd, dyd, gd, rows, d, 1e-5), { atol: 2e-4, rtol: 1e-4 }, `${id} [${rows}, ${d}] dx`);
      for (const t of [x, gamma, beta, dy, y, stats, dx]) t.dispose();
    }
  });
});
