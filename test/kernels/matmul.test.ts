// Every matmul kernel variant, forced one at a time, against the f64 CPU reference: odd shapes that
// don't divide any tile, transposed operands read in place (each vec4 layout and the strided one),
// broadcast batches, and the fused epilogue (bias, GELU, residual, pre-activation) in combinations.
//
// Tolerance: an f32 dot product of length K with inputs in [-1, 1] is off by about sqrt(K)·eps·|terms|,
// so atol = 4e-6·sqrt(K) (as in test/ops/matmul.test.ts), plus 1e-6 for the f32 erf of GELU
// (|error| < 1.5e-7) and the epilogue's own roundings, and rtol = 1e-5 for outputs far from zero.

import { beforeAll, describe, expect, it } from 'vitest';
import { matmulCpu, matmulEpilogueCpu, matmulFused } from '../../kernels/matmul.js';
import {
  defaultMatmulVariant,
  fixedSubgroupSize,
  matmulPlan,
  maxWindows,
  windowColVecs,
  windowK,
  type MatmulEpilogue,
  type MatmulKernelConfig,
  type MatmulOptions,
  type MatmulVariantName,
} from '../../kernels/matmul-plan.js';
import { isCpuAdapterInfo, type Device, type Tensor } from '../../engine/node.js';
import { broadcastCpu, expectClose, expectCompiles, getDevice, permuteCpu, seededValues } from '../helpers.js';
import { matmulKernel } from '../../kernels/matmul-wgsl.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

const tol = (k: number) => ({ atol: 4e-6 * Math.sqrt(Math.max(k, 1)) + 1e-6, rtol: 1e-5 });

interface Case {
  m: number;
  k: number;
  n: number;
  /** Batch axes of A and B (broadcast against each other). */
  batchA?: number[];
  batchB?: number[];
  /** Store A as [..., K, M] and pass its transpose (likewise B as [..., N, K]). */
  aT?: boolean;
  bT?: boolean;
}

interface EpilogueCase {
  bias?: boolean;
  gelu?: boolean;
  /** The residual's shape, or true for the output's shape. */
  residual?: boolean | number[];
  pre?: boolean;
}

const prod = (s: readonly number[]) => s.reduce((x, y) => x * y, 1);
const swapLast = (s: readonly number[]) => [...s.slice(0, -2), s[s.length - 1], s[s.length - 2]];
const swapAxes = (r: number) => [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2];

/** A logical [..., rows, cols] operand, stored transposed when `t`, with its row-major host copy. */
function operand(shape: number[], t: boolean, seed: number): { tensor: Tensor; host: Float64Array; store: Tensor } {
  const stored = t ? swapLast(shape) : shape;
  const data = seededValues(prod(stored), seed);
  const store = device.tensor(data, stored);
  const tensor = t ? store.transpose() : store;
  const host = t ? permuteCpu(data, stored, swapAxes(stored.length)) : Float64Array.from(data);
  return { tensor, host, store };
}

/** Runs `variant` on `c` with the epilogue `e`, checks out (and pre) against the CPU, returns the plan. */
async function check(variant: MatmulVariantName | undefined, c: Case, e: EpilogueCase = {}, blocking: MatmulOptions = {}): Promise<MatmulKernelConfig> {
  const { m, k, n } = c;
  const batchA = c.batchA ?? [];
  const batchB = c.batchB ?? [];
  const batch = batchA.length >= batchB.length ? [...batchA] : [...batchB];
  for (let i = 1; i <= Math.min(batchA.length, batchB.length); i++) {
    batch[batch.length - i] = Math.max(batchA[batchA.length - i], batchB[batchB.length - i]);
  }
  const outShape = [...batch, m, n];
  const A = operand([...batchA, m, k], !!c.aT, 11);
  const B = operand([...batchB, k, n], !!c.bT, 12);
  const biasData = e.bias ? seededValues(n, 13) : undefined;
  const resShape = e.residual === true ? outShape : e.residual || undefined;
  const resData = resShape ? seededValues(prod(resShape), 14) : undefined;
  const epilogue: MatmulEpilogue = {
    bias: biasData ? device.tensor(biasData, [n]) : undefined,
    gelu: e.gelu,
    residual: resData && resShape ? device.tensor(resData, resShape) : undefined,
    preActivation: e.pre,
  };
  const options: MatmulOptions = { ...blocking, ...(variant ? { variant } : {}) };
  const plan = matmulPlan(A.tensor, B.tensor, epilogue, options);
  const { out, pre } = matmulFused(A.tensor, B.tensor, epilogue, options);
  expect(out.shape).toEqual(outShape);

  const bsz = prod(batch);
  const aB = broadcastCpu(A.host, [...batchA, m, k], [...batch, m, k]);
  const bB = broadcastCpu(B.host, [...batchB, k, n], [...batch, k, n]);
  const product = matmulCpu(aB, bB, bsz, m, k, n);
  const ref = matmulEpilogueCpu(product, n, {
    bias: biasData,
    gelu: e.gelu,
    residual: resData && resShape ? broadcastCpu(resData, resShape, outShape) : undefined,
  });
  const what = `${variant ?? 'default'} ${JSON.stringify(c)} ${JSON.stringify(e)}`;
  expectClose(await out.data(), ref.out, tol(k), `${what} out`);
  if (e.pre) {
    expect(pre?.shape).toEqual(outShape);
    expectClose(await pre!.data(), ref.pre, tol(k), `${what} pre`);
  } else {
    expect(pre).toBeUndefined();
  }
  for (const t of [out, pre, A.tensor, A.store, B.tensor, B.store, epilogue.bias, epilogue.residual]) t?.dispose();
  return plan;
}

const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [3, 5, 7],
  [65, 97, 43],
  [197, 64, 197],
  [257, 129, 65],
  [197, 768, 96],
];

const VARIANTS: MatmulVariantName[] = ['subgroup', 'register', 'tiled', 'window'];

describe.each(VARIANTS)("matmul kernel variant '%s'", (variant) => {
  /** 'subgroup' and 'window' need subgroups of a fixed size; skip them on adapters without. */
  const supported = () => (variant !== 'subgroup' && variant !== 'window') || fixedSubgroupSize(device) !== null;
  /** 'window' packs one B for all batches: batched B operands are for the other variants. */
  const batchedB = (c: Case) => (variant === 'window' && c.batchB ? Promise.resolve() : check(variant, c));

  it.for(SHAPES)('%i×%i×%i (M×K×N) matches the CPU reference', async ([m, k, n], { skip }) => {
    if (!supported()) skip();
    const plan = await check(variant, { m, k, n });
    expect(plan.variant).toBe(variant);
    expect(plan.kTail).toBe(k % 4 !== 0);
  });

  it('reads transposed operands in place, in every layout', async ({ skip }) => {
    if (!supported()) skip();
    // A [M, K] from Xᵀ with X [K, M]: contiguous along m ('m4', and K % 4 != 0 exercises the k tail).
    let plan = await check(variant, { m: 68, k: 37, n: 45, aT: true });
    expect([plan.a, plan.b]).toEqual(['m4', 'strided']);
    // B = Wᵀ for a Linear weight W [N, K]: contiguous along k ('k4').
    plan = await check(variant, { m: 45, k: 36, n: 50, bT: true });
    expect([plan.a, plan.b]).toEqual(['k4', 'k4']);
    plan = await check(variant, { m: 64, k: 52, n: 40, aT: true, bT: true });
    expect([plan.a, plan.b]).toEqual(['m4', 'k4']);
    plan = await check(variant, { m: 33, k: 40, n: 36 });
    expect([plan.a, plan.b]).toEqual(['k4', 'n4']);
    plan = await check(variant, { m: 8, k: 12, n: 20, aT: true });
    expect([plan.a, plan.b]).toEqual(['m4', 'n4']);
    // Transposed but odd: strided scalar loads, alone or next to a vec4 layout.
    plan = await check(variant, { m: 37, k: 29, n: 19, aT: true, bT: true });
    expect([plan.a, plan.b]).toEqual(['strided', 'strided']);
    plan = await check(variant, { m: 9, k: 6, n: 8 });
    expect([plan.a, plan.b]).toEqual(['strided', 'n4']);
    plan = await check(variant, { m: 5, k: 8, n: 7, aT: true, bT: true });
    expect([plan.a, plan.b]).toEqual(['strided', 'k4']);
  });

  it('other blockings: more column groups, other row counts', async ({ skip }) => {
    if (!supported() || variant === 'tiled' || variant === 'window') skip();
    const lanes = variant === 'subgroup' ? fixedSubgroupSize(device)! : 8;
    const wide = { rows: 2 * lanes, colVecs: 2 };
    let plan = await check(variant, { m: 70, k: 44, n: 75 }, {}, wide);
    expect(plan).toMatchObject({ ...wide, a: 'k4', b: 'strided' });
    plan = await check(variant, { m: 40, k: 36, n: 72, bT: true }, { bias: true }, wide);
    expect(plan).toMatchObject({ ...wide, a: 'k4', b: 'k4' });
    plan = await check(variant, { m: 36, k: 23, n: 50, aT: true }, {}, wide);
    expect(plan).toMatchObject({ ...wide, a: 'm4', b: 'strided' });
    const narrow = { rows: variant === 'subgroup' ? lanes : 4, colVecs: 3 };
    plan = await check(variant, { m: 30, k: 20, n: 101 }, {}, narrow);
    expect(plan).toMatchObject({ ...narrow, a: 'k4', b: 'strided' });
  });

  it('batched: broadcast batch axes, flattened or copied', async ({ skip }) => {
    if (!supported()) skip();
    // B broadcast over a leading axis: its batch strides (0, K·N) don't flatten, so B is copied.
    await batchedB({ m: 11, k: 13, n: 9, batchA: [2, 3], batchB: [3] });
    // B 2-D, A contiguous: the batch is folded into A's rows ([4, 20, 16] read as [80, 16]).
    const plan = await check(variant, { m: 20, k: 16, n: 24, batchA: [4] });
    expect([plan.a, plan.b]).toEqual(['k4', 'n4']);
    await check(variant, { m: 1, k: 8, n: 12, batchA: [5] }, { bias: true });
    // Rows that don't run on across batches (a transposed batch) are not folded.
    await check(variant, { m: 12, k: 8, n: 20, batchA: [3], aT: true }, { residual: true });
    // Transposed batched views.
    await batchedB({ m: 12, k: 8, n: 20, batchA: [3], batchB: [3], aT: true, bT: true });
    await batchedB({ m: 5, k: 7, n: 6, batchA: [2, 1], batchB: [1, 3], bT: true });
  });

  it.for<EpilogueCase>([
    { bias: true },
    { gelu: true },
    { gelu: true, pre: true },
    { residual: true },
    { bias: true, residual: [36] },
    { bias: true, gelu: true, residual: true, pre: true },
  ])('fused epilogue %o (vec4 layouts)', async (e, { skip }) => {
    if (!supported()) skip();
    await check(variant, { m: 33, k: 40, n: 36, batchA: [2] }, e);
  });

  it.for<EpilogueCase>([
    { bias: true, gelu: true, pre: true },
    { bias: true, gelu: true, residual: true, pre: true },
  ])('fused epilogue %o (strided operands, k tail)', async (e, { skip }) => {
    if (!supported()) skip();
    await check(variant, { m: 19, k: 21, n: 23, bT: true }, e);
  });
});

describe("matmul 'window': B in uniform windows, K in passes", () => {
  const lanes = () => fixedSubgroupSize(device);

  it.for<[string, Case, EpilogueCase]>([
    ['k4 · k4 (x·Wᵀ), whole epilogue', { m: 70, k: 0, n: 75, bT: true }, { bias: true, gelu: true, residual: true, pre: true }],
    ['m4 · n4 (Xᵀ·dY), k tail', { m: 68, k: 3, n: 40, aT: true }, { bias: true }],
    ['strided · strided, k tail, GELU', { m: 37, k: 1, n: 19, aT: true, bT: true }, { gelu: true, pre: true }],
    ['batched A, one B', { m: 20, k: 0, n: 24, batchA: [3], aT: true }, { residual: true }],
  ])('%s: one window per pass over K of several windows', async ([, c, e], { skip }) => {
    const s = lanes();
    if (!s) skip();
    // Three windows' worth of k (and the case's tail): three passes, the last with the epilogue.
    const k = 3 * windowK(s!) - 8 + c.k;
    const plan = await check('window', { ...c, k }, e, { windows: 1 });
    expect(plan).toMatchObject({ variant: 'window', windows: 1 });
    const two = await check('window', { ...c, k }, e, { windows: 2 });
    expect(two.windows).toBe(2);
  });

  // The pack reads B with vec4 loads where its layout allows (kernels/matmul-wgsl.ts, packMode):
  // 'n4' for columns contiguous, 'k4' for k contiguous (B = Wᵀ), else one f32 at a time.
  it.for<[string, Case, string]>([
    ['Wᵀ, K % 4 = 0, a column tail', { m: 40, k: 36, n: 50, bT: true }, 'matmul_pack_b_k4'],
    ['Wᵀ over three windows', { m: 40, k: 0, n: 20, bT: true }, 'matmul_pack_b_k4'],
    ['row-major, N % 4 = 0, a k tail', { m: 40, k: 37, n: 36 }, 'matmul_pack_b_n4'],
    ['row-major, N % 4 != 0', { m: 40, k: 36, n: 50 }, 'matmul_pack_b'],
    ['Wᵀ, K % 4 != 0', { m: 40, k: 38, n: 36, bT: true }, 'matmul_pack_b'],
  ])('packs B %s with the kernel the layout allows', async ([, c, kernel], { skip }) => {
    const s = lanes();
    if (!s) skip();
    const k = c.k || 3 * windowK(s!) - 8;
    const session = device.profile();
    await check('window', { ...c, k }, { bias: true }, { windows: 1 });
    const packs = (await session.stop()).kernels.filter((x) => x.name.startsWith('matmul_pack_b'));
    expect(packs.map((x) => x.name)).toEqual([kernel]);
  });

  it('packs a B that starts at an offset: vec4 loads at a multiple of 4 elements, scalar ones elsewhere', async ({ skip }) => {
    if (!lanes()) skip();
    const [m, k, n] = [40, 24, 36];
    const a = seededValues(m * k, 21);
    const b = seededValues(k * n, 22);
    const want = matmulCpu(Float64Array.from(a), Float64Array.from(b), 1, m, k, n);
    for (const [at, kernel] of [[4, 'matmul_pack_b_n4'], [2, 'matmul_pack_b'], [0, 'matmul_pack_b_n4']] as const) {
      const flat = new Float32Array(at + k * n + 4);
      flat.set(b, at);
      const store = device.tensor(flat, [flat.length]);
      const B = store.slice([at], [at + k * n]).reshape([k, n]);
      expect(B.offset).toBe(at);
      const A = device.tensor(a, [m, k]);
      const session = device.profile();
      const { out } = matmulFused(A, B, {}, { variant: 'window' });
      expectClose(await out.data(), want, tol(k), `B at offset ${at}`);
      expect((await session.stop()).kernels.filter((x) => x.name.startsWith('matmul_pack_b')).map((x) => x.name)).toEqual([kernel]);
      for (const t of [store, B, A, out]) t.dispose();
    }
  });

  it('two column vec4s per lane: tiles twice as wide, windows half as deep', async ({ skip }) => {
    const s = lanes();
    if (!s) skip();
    const k = windowK(2 * s!) + 20;
    const plan = await check('window', { m: 50, k, n: 3 * 8 * s! + 5, bT: true }, { bias: true, residual: true }, { rows: s!, colVecs: 2, windows: 1 });
    expect(plan).toMatchObject({ variant: 'window', rows: s, colVecs: 2, windows: 1 });
    await check('window', { m: 37, k: k + 1, n: 70, aT: true }, { gelu: true, pre: true }, { rows: 2 * s!, colVecs: 2 });
  });

  it('takes 2 column vec4s per lane at 16 lanes where N fills a 128-column tile and K needs no extra pass', () => {
    // ViT-B at batch 8, 11 windows per pass (lavapipe): K = 768 fits one pass either way.
    expect(windowColVecs(16, 768, 768, 11)).toBe(2);
    expect(windowColVecs(16, 2304, 768, 11)).toBe(2);
    expect(windowColVecs(16, 128, 100, 11)).toBe(2);
    // dW (K = 1576 tokens): 7 windows of 256 k's in one pass, but 13 of 128 in two.
    expect(windowColVecs(16, 768, 1576, 11)).toBe(1);
    // K = 3072: 2 passes against 3; K = 2816: 1 against 2; one window per pass: 7 passes against 13.
    expect(windowColVecs(16, 768, 3072, 11)).toBe(1);
    expect(windowColVecs(16, 768, 2816, 11)).toBe(1);
    expect(windowColVecs(16, 768, 1576, 1)).toBe(1);
    // A narrow N, or 8 lanes (not measured there).
    expect(windowColVecs(16, 127, 768, 11)).toBe(1);
    expect(windowColVecs(8, 768, 768, 11)).toBe(1);
  });

  it('is the rule on CPU adapters with one subgroup size, for Linear-sized products with one B', () => {
    const x = device.zeros([2, 197, 256]);
    const w = device.zeros([192, 256]);
    const plan = matmulPlan(x, w.transpose());
    if (device.isCpuAdapter && fixedSubgroupSize(device)) {
      expect(plan.variant).toBe('window');
      // Tiles of 128 columns at 16 lanes (N = 192 fills one), and as many windows per pass as the
      // device's uniform buffers allow (one holds the params).
      const s = fixedSubgroupSize(device)!;
      expect(plan.colVecs).toBe(s === 16 ? 2 : 1);
      expect(plan.windows).toBe(Math.min(Math.ceil(256 / windowK(s * plan.colVecs)), maxWindows(device)));
      // A K that would need an extra pass at 128 columns (13 windows of 128 k's) keeps 64.
      const deep = matmulPlan(device.zeros([2, 197, 1576]), device.zeros([192, 1576]).transpose());
      expect(deep).toMatchObject({ variant: 'window', colVecs: windowColVecs(s, 192, 1576, maxWindows(device)) });
      if (s === 16 && maxWindows(device) < 13) expect(deep.colVecs).toBe(1);
    } else expect(plan.variant).not.toBe('window');
    // A small product, one with rows for fewer than 4 workgroups, or one B per batch, keeps the others.
    expect(matmulPlan(device.zeros([8, 64]), device.zeros([64, 16])).variant).not.toBe('window');
    expect(matmulPlan(device.zeros([100, 1024]), device.zeros([1024, 512])).variant).not.toBe('window');
    const batched = matmulPlan(device.zeros([4, 128, 128]), device.zeros([4, 128, 128]));
    expect(batched.variant).not.toBe('window');
    expect(() => matmulPlan(device.zeros([4, 8, 8]), device.zeros([4, 8, 8]), {}, { variant: 'window' })).toThrow(fixedSubgroupSize(device) ? /one B for all 4 batches/ : /fixed subgroup size/);
    for (const t of [x, w]) t.dispose();
  });
});

describe('matmul variant choice', () => {
  it('picks per adapter: subgroup (or register) on a CPU adapter, tiled on a GPU', () => {
    const cpuLike = device.info.architecture === 'software' || /llvmpipe|swiftshader/i.test(device.info.description);
    expect(device.isCpuAdapter).toBe(isCpuAdapterInfo(device.info));
    if (cpuLike) expect(device.isCpuAdapter).toBe(true);
    const chosen = defaultMatmulVariant(device);
    if (cpuLike) expect(chosen).toBe(fixedSubgroupSize(device) ? 'subgroup' : 'register');
    const gpuInfo = { ...device.info, architecture: 'hopper', vendor: 'nvidia', device: 'H100', description: 'NVIDIA H100', isFallbackAdapter: false };
    expect(isCpuAdapterInfo(gpuInfo)).toBe(false);
    const gpu = { isCpuAdapter: isCpuAdapterInfo(gpuInfo), subgroups: { minSize: 32, maxSize: 32 } };
    expect(defaultMatmulVariant(gpu)).toBe('tiled');
    const swiftshaderInfo = { ...device.info, architecture: '', vendor: 'google', description: 'SwiftShader Device (Subzero)', features: [] };
    expect(isCpuAdapterInfo(swiftshaderInfo)).toBe(true);
    // SwiftShader through this Dawn has subgroups of exactly 4: the 'subgroup' kernel at 4 lanes.
    const swiftshader = { isCpuAdapter: isCpuAdapterInfo(swiftshaderInfo), subgroups: { minSize: 4, maxSize: 4 } };
    expect(defaultMatmulVariant(swiftshader)).toBe('subgroup');
    // Without the 'subgroups' feature the Device reports no subgroup sizes; varying sizes don't do either.
    expect(defaultMatmulVariant({ ...swiftshader, subgroups: null })).toBe('register');
    expect(defaultMatmulVariant({ ...swiftshader, subgroups: { minSize: 4, maxSize: 16 } })).toBe('register');
  });

  it('the Linear layouts are read in place: x·Wᵀ, dY·W and Xᵀ·dY', () => {
    const x = device.zeros([2, 197, 64]);
    const w = device.zeros([96, 64]);
    const dy = device.zeros([2, 197, 96]);
    expect(matmulPlan(x, w.transpose())).toMatchObject({ a: 'k4', b: 'k4' });
    expect(matmulPlan(dy, w)).toMatchObject({ a: 'k4', b: 'n4' });
    const flatX = x.reshape([394, 64]);
    const flatDy = dy.reshape([394, 96]);
    expect(matmulPlan(flatDy.transpose(), flatX)).toMatchObject({ a: 'm4', b: 'n4' });
    for (const t of [x, w, dy, flatX, flatDy]) t.dispose();
  });

  it('K = 0: the epilogue of a zero product', async () => {
    const bias = device.tensor([1, -2, 3]);
    const residual = device.tensor([[0.5, 0.5, 0.5], [1, 1, 1]]);
    const { out, pre } = matmulFused(device.zeros([2, 0]), device.zeros([0, 3]), { bias, residual, preActivation: true });
    expect(Array.from(await out.data())).toEqual([1.5, -1.5, 3.5, 2, -1, 4]);
    expect(Array.from(await pre!.data())).toEqual([1, -2, 3, 1, -2, 3]);
  });

  it('rejects a bias or residual of the wrong shape', () => {
    const a = device.zeros([4, 3]);
    const b = device.zeros([3, 5]);
    expect(() => matmulFused(a, b, { bias: device.zeros([4]) })).toThrow(/bias \[4\] must be \[5\]/);
    expect(() => matmulFused(a, b, { residual: device.zeros([3, 5]) })).toThrow(/residual/);
    expect(() => matmulFused(a, device.zeros([4, 5]))).toThrow(/inner dimensions differ/);
  });
});

describe('matmul kernel configurations compile', () => {
  // Every variant in every A × B operand layout, with the whole epilogue (bias, GELU, residual,
  // pre-activation) and with a k tail where the layouts allow one.
  it.for(VARIANTS)("'%s': every operand layout", { timeout: 600_000 }, async (variant, { skip }) => {
    const lanes = variant === 'subgroup' || variant === 'window' ? fixedSubgroupSize(device) : variant === 'tiled' ? 256 : 8;
    if (!lanes) skip();
    if (variant === 'window') {
      // B is read packed whatever its layout: every A layout, one window or several, first pass or later.
      const configs: MatmulKernelConfig[] = [];
      for (const a of ['k4', 'm4', 'strided'] as const) {
        for (const [windows, accIn] of [[1, false], [3, true]] as const) {
          configs.push({ variant, lanes: lanes!, rows: 2 * lanes!, colVecs: 1, a, b: 'n4', kTail: a !== 'k4', windows, accIn, bias: true, gelu: true, residual: true, pre: true });
        }
      }
      expect(await expectCompiles(device, configs.map(matmulKernel))).toBe(configs.length);
      return;
    }
    const base = { variant, lanes: lanes!, bias: true, gelu: true, residual: true, pre: true };
    const blocking = variant === 'tiled' ? { rows: 64, colVecs: 16 } : { rows: variant === 'subgroup' ? 2 * lanes! : 8, colVecs: 1 };
    const configs: MatmulKernelConfig[] = [];
    for (const a of ['k4', 'm4', 'strided'] as const) {
      for (const b of ['n4', 'k4', 'strided'] as const) {
        configs.push({ ...base, ...blocking, a, b, kTail: false });
        if (a !== 'k4' && b !== 'k4') configs.push({ ...base, ...blocking, a, b, kTail: true });
      }
    }
    // 'tiled' ignores the vec4 layouts but for its fill order, and has no k-tail code: fewer distinct sources.
    const kernels = configs.map(matmulKernel);
    expect(await expectCompiles(device, kernels)).toBe(variant === 'tiled' ? 4 : configs.length);
  });
});
