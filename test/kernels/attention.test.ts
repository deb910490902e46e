import { beforeAll, describe, expect, it } from 'vitest';
import { attentionBackward, attentionBackwardCpu, attentionCpu, attentionForward } from '../../kernels/attention.js';
import { PLAIN_VARIANTS, SUBGROUP16_VARIANTS, SUBGROUP_VARIANTS, defaultVariants, subgroupWidth, type AttentionVariants } from '../../kernels/attention-plan.js';
import { attentionBackwardDkvKernel, attentionBackwardDqKernel, attentionForwardKernel, attentionRowStatsKernel } from '../../kernels/attention-wgsl.js';
import { type Device, type Tensor } from '../../engine/node.js';
import { sizeClass } from '../../engine/buffer-pool.js';
import { ATTENTION_TOL, expectClose, expectCompiles, getDevice, permuteCpu, seededValues } from '../helpers.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

// Tolerances against the f64 reference, and why each is what it is: ATTENTION_TOL in test/helpers.ts.
const { out: OUT_TOL, lse: LSE_TOL, grad: GRAD_TOL } = ATTENTION_TOL;

interface Case {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  g: Float32Array;
}

function inputs(b: number, h: number, n: number, d: number, seed: number): Case {
  const size = b * h * n * d;
  return {
    q: seededValues(size, seed, -2, 2),
    k: seededValues(size, seed + 1, -2, 2),
    v: seededValues(size, seed + 2),
    g: seededValues(size, seed + 3),
  };
}

async function readAll(...ts: Tensor[]): Promise<Float32Array[]> {
  const out = await Promise.all(ts.map((t) => t.data()));
  for (const t of ts) t.dispose();
  return out;
}

async function checkForward(b: number, h: number, n: number, d: number, scale: number, seed: number, variants?: AttentionVariants) {
  const c = inputs(b, h, n, d, seed);
  const shape = [b, h, n, d];
  const [q, k, v] = [c.q, c.k, c.v].map((x) => device.tensor(x, shape));
  const { out, lse } = attentionForward(q, k, v, scale, variants?.forward);
  expect(out.shape).toEqual(shape);
  expect(lse.shape).toEqual([b, h, n]);
  const [o, l] = await readAll(out, lse, q, k, v);
  const ref = attentionCpu(c.q, c.k, c.v, b, h, n, d, scale);
  expectClose(o, ref.out, OUT_TOL, 'out');
  expectClose(l, ref.lse, LSE_TOL, 'lse');
}

async function checkBackward(b: number, h: number, n: number, d: number, scale: number, seed: number, variants?: AttentionVariants) {
  const c = inputs(b, h, n, d, seed);
  const shape = [b, h, n, d];
  const [q, k, v, g] = [c.q, c.k, c.v, c.g].map((x) => device.tensor(x, shape));
  const { out, lse } = attentionForward(q, k, v, scale, variants?.forward);
  const { dq, dk, dv } = attentionBackward(q, k, v, out, lse, g, scale, variants);
  const [gq, gk, gv] = await readAll(dq, dk, dv, out, lse, q, k, v, g);
  const ref = attentionBackwardCpu(c.q, c.k, c.v, c.g, b, h, n, d, scale);
  expectClose(gq, ref.dq, GRAD_TOL, 'dq');
  expectClose(gk, ref.dk, GRAD_TOL, 'dk');
  expectClose(gv, ref.dv, GRAD_TOL, 'dv');
}

const SHAPES: [number, number, number, number][] = [
  [1, 1, 1, 64],
  [2, 3, 7, 64],
  [1, 2, 65, 32],
  [2, 2, 197, 64],
  [1, 2, 257, 64],
  [1, 3, 9, 8],
  [2, 1, 33, 16],
];

describe('CPU references', () => {
  it('backward matches central finite differences of the forward (f64)', () => {
    const [B, H, N, D, scale] = [1, 2, 5, 4, 0.7];
    const size = B * H * N * D;
    const q = Array.from(seededValues(size, 11, -2, 2));
    const k = Array.from(seededValues(size, 12, -2, 2));
    const v = Array.from(seededValues(size, 13));
    const g = Array.from(seededValues(size, 14));
    const loss = () => attentionCpu(q, k, v, B, H, N, D, scale).out.reduce((s, o, i) => s + o * g[i], 0);
    const grads = attentionBackwardCpu(q, k, v, g, B, H, N, D, scale);
    const eps = 1e-6;
    for (const [name, x, analytic] of [['dq', q, grads.dq], ['dk', k, grads.dk], ['dv', v, grads.dv]] as const) {
      const numeric = x.map((_, i) => {
        const x0 = x[i];
        x[i] = x0 + eps;
        const up = loss();
        x[i] = x0 - eps;
        const down = loss();
        x[i] = x0;
        return (up - down) / (2 * eps);
      });
      // Central differences in f64: truncation O(eps²) and rounding ~1e-16/eps, both ≪ 1e-8.
      expectClose(analytic, numeric, { atol: 1e-8, rtol: 1e-7 }, name);
    }
  });

  it('forward lse is the log-sum-exp of the scaled scores and out sums the softmax-weighted v', () => {
    // Two identical queries, two keys, D = 4: out = σ·v0 + (1 − σ)·v1 with σ = e^s0 / (e^s0 + e^0).
    const q = [1, 0, 0, 0, 1, 0, 0, 0];
    const k = [2, 0, 0, 0, 0, 0, 0, 0];
    const v = [1, 2, 3, 4, -1, -2, -3, -4];
    const { out, lse } = attentionCpu(q, k, v, 1, 1, 2, 4, 0.5);
    const s0 = 1; // q0·k0·scale; the other score is 0
    const w0 = Math.exp(s0) / (Math.exp(s0) + 1);
    expectClose(out.slice(0, 4), [1, 2, 3, 4].map((x) => w0 * x - (1 - w0) * x), { atol: 1e-12 });
    expectClose([lse[0]], [Math.log(Math.exp(s0) + 1)], { atol: 1e-12 });
  });
});

describe('attention forward', () => {
  it.each(SHAPES)('[%i, %i, %i, %i] matches the CPU reference', async (b, h, n, d) => {
    await checkForward(b, h, n, d, 1 / Math.sqrt(d), b * 1000 + n);
  });

  it('peaked scores (scale 1: the running max changes often) match', async () => {
    await checkForward(1, 2, 97, 64, 1, 5);
  });

  it('N = 1370 (ViT-B/14 at 518 px) matches', async () => {
    await checkForward(1, 1, 1370, 64, 0.125, 7);
  });

  it('reads permuted views ([B, N, H, D] storage) and views at odd offsets, forward and backward', async () => {
    const [b, h, n, d] = [2, 3, 11, 8];
    const c = inputs(b, h, n, d, 21);
    // Stored as [B, N, H, D], viewed as [B, H, N, D], as a ViT's qkv projection produces them.
    const stored = (x: Float32Array) => Float32Array.from(permuteCpu(x, [b, h, n, d], [0, 2, 1, 3]));
    const [q, k, v] = [c.q, c.k, c.v].map((x) => device.tensor(stored(x), [b, n, h, d]).permute([0, 2, 1, 3]));
    // dOut contiguous but one element into its buffer: the kernels read vec4s, so it is copied.
    const gBuf = device.tensor(Float32Array.from([0, ...c.g]), [1 + c.g.length]);
    const g = gBuf.narrow(0, 1, c.g.length).reshape([b, h, n, d]);
    expect(g.isContiguous && g.offset === 1).toBe(true);
    const live = device.memory().liveBuffers;
    const { out, lse } = attentionForward(q, k, v, 0.25);
    expect(device.memory().liveBuffers).toBe(live + 2); // out and lse: the views were read in place, and g's copy is gone
    const { dq, dk, dv } = attentionBackward(q, k, v, out, lse, g, 0.25);
    expect(device.memory().liveBuffers).toBe(live + 4); // dq, and dk and dv in one buffer (one binding)
    expect(dk.storage).toBe(dv.storage);
    const [o, gq, gk, gv] = await readAll(out, dq, dk, dv, lse, q, k, v, g, gBuf);
    expectClose(o, attentionCpu(c.q, c.k, c.v, b, h, n, d, 0.25).out, OUT_TOL, 'out');
    const ref = attentionBackwardCpu(c.q, c.k, c.v, c.g, b, h, n, d, 0.25);
    expectClose(gq, ref.dq, GRAD_TOL, 'dq');
    expectClose(gk, ref.dk, GRAD_TOL, 'dk');
    expectClose(gv, ref.dv, GRAD_TOL, 'dv');
  });

  it('rejects mismatched shapes and unsupported head dims', () => {
    const a = device.zeros([1, 2, 3, 8]);
    expect(() => attentionForward(a, device.zeros([1, 2, 4, 8]), a, 1)).toThrow(/does not match q/);
    expect(() => attentionForward(device.zeros([2, 3, 6]), a, a, 1)).toThrow(/\[B, H, N, D\]/);
    const odd = device.zeros([1, 1, 2, 6]);
    expect(() => attentionForward(odd, odd, odd, 1)).toThrow(/head dim 6/);
  });
});

describe('attention backward', () => {
  it.each(SHAPES)('[%i, %i, %i, %i] matches the CPU reference', async (b, h, n, d) => {
    await checkBackward(b, h, n, d, 1 / Math.sqrt(d), b * 1000 + n + 1);
  });

  it('peaked scores (scale 1) match', async () => {
    await checkBackward(1, 1, 97, 32, 1, 6);
  });

  it('N = 1370 matches', async () => {
    await checkBackward(1, 1, 1370, 64, 0.125, 8);
  });
});

// Kernel variants beyond the defaults, on a small problem (D = 4 keeps LLVM's compile short; its cost
// grows with the unrolled loads): the plain-load defaults used without subgroups, several rows per
// invocation, key blocks that run past N, a workgroup of three subgroups, and a dK/dV query block
// wider than a subgroup (its (lse, Di) pairs then come in two or more loads per lane). The subgroup
// variants take the adapter's own subgroup width S (lavapipe 8, SwiftShader 4), so every adapter with
// subgroups runs them; one without skips them.
const same = (v: AttentionVariants['forward']): AttentionVariants => ({ forward: v, dq: v, dkv: v });
const oneRow = (s: number) => ({ wg: s, rows: 1, keyBlock: 1, subgroup: s });
const VARIANTS: [string, (s: number) => AttentionVariants][] = [
  ['plain loads (no subgroups)', () => PLAIN_VARIANTS],
  ['plain loads, 2 rows × 2 keys', () => same({ wg: 8, rows: 2, keyBlock: 2, subgroup: 0 })],
  ['subgroups, 3 subgroups × 2 rows × 3 keys', (s) => same({ wg: 3 * s, rows: 2, keyBlock: 3, subgroup: s })],
  ['subgroups, dK/dV with 10 queries a step', (s) => ({ forward: oneRow(s), dq: oneRow(s), dkv: { wg: s, rows: 1, keyBlock: 10, subgroup: s } })],
];

/** `v` at the adapter's subgroup width (the workgroup rounded up to whole subgroups). */
const atWidth = (v: AttentionVariants['forward'], s: number) => ({ ...v, subgroup: s, wg: Math.ceil(v.wg / s) * s });

describe('attention kernel variants', () => {
  it.for(VARIANTS)('%s: forward and backward match', async ([, make], { skip }) => {
    const s = subgroupWidth(device);
    const variants = make(s);
    if (Object.values(variants).some((v) => v.subgroup > 0) && !s) skip(); // no subgroups on this adapter
    await checkForward(2, 1, 45, 4, 0.8, 9, variants);
    await checkBackward(2, 1, 45, 4, 0.8, 10, variants);
  });
});

describe('attention default variants', () => {
  // Stand-ins for the devices the rule tells apart: only `subgroups` and `isCpuAdapter` are read.
  const dev = (min: number, max: number, isCpuAdapter: boolean) => ({ subgroups: min ? { minSize: min, maxSize: max } : null, isCpuAdapter });
  it('takes the 16-lane backward kernels only on a CPU adapter with subgroups of exactly 16', () => {
    expect(defaultVariants(dev(16, 16, true))).toBe(SUBGROUP16_VARIANTS);
    expect(SUBGROUP16_VARIANTS.dq).toEqual({ wg: 16, rows: 1, keyBlock: 1, subgroup: 16 });
    expect(SUBGROUP16_VARIANTS.forward).toBe(SUBGROUP_VARIANTS.forward);
    expect(defaultVariants(dev(8, 8, true))).toBe(SUBGROUP_VARIANTS); // lavapipe at 256 bits
    expect(defaultVariants(dev(16, 16, false))).toBe(SUBGROUP_VARIANTS); // a GPU: not measured
    expect(defaultVariants(dev(8, 16, true))).toBe(SUBGROUP_VARIANTS); // sizes that vary
    expect(defaultVariants(dev(4, 4, true))).toBe(PLAIN_VARIANTS); // SwiftShader
    expect(defaultVariants(dev(0, 0, true))).toBe(PLAIN_VARIANTS);
  });

  it("this adapter's defaults match the reference at the ViT-B head dim", async () => {
    const variants = defaultVariants(device);
    await checkForward(2, 3, 37, 64, 0.125, 41, variants);
    await checkBackward(2, 3, 37, 64, 0.125, 42, variants);
  });
});

describe('attention memory', () => {
  it('never allocates the N×N score matrix (N = 1370)', async () => {
    const [b, h, n, d] = [1, 2, 1370, 64];
    const c = inputs(b, h, n, d, 31);
    const shape = [b, h, n, d];
    const [q, k, v, g] = [c.q, c.k, c.v, c.g].map((x) => device.tensor(x, shape));
    await device.sync();
    const before = device.memory().liveBytes;
    device.pool.resetPeak();
    const { out, lse } = attentionForward(q, k, v, 0.125);
    const { dq, dk, dv } = attentionBackward(q, k, v, out, lse, g, 0.125);
    await device.sync();
    const growth = device.memory().peakBytes - before;
    // Exactly the outputs (out, dq, dk, dv; lse) and the backward's (lse, Di) pairs, in pool size classes.
    const rows = b * h * n;
    const expected = 4 * sizeClass(rows * d * 4) + sizeClass(rows * 4) + sizeClass(rows * 2 * 4);
    expect(growth).toBeLessThanOrEqual(expected);
    const scoreBytes = b * h * n * n * 4;
    expect(growth).toBeLessThan(scoreBytes / 4);
    for (const t of [q, k, v, g, out, lse, dq, dk, dv]) t.dispose();
  });
});

describe('attention kernels compile', () => {
  // The subgroup variants at the adapter's width: 8 on lavapipe (the defaults), 4 on SwiftShader.
  it.for([
    ['plain loads', () => PLAIN_VARIANTS],
    ['subgroup broadcasts', (s) => ({ forward: atWidth(SUBGROUP_VARIANTS.forward, s), dq: atWidth(SUBGROUP_VARIANTS.dq, s), dkv: atWidth(SUBGROUP_VARIANTS.dkv, s) })],
    ["this adapter's defaults", () => defaultVariants(device)],
  ] as [string, (s: number) => AttentionVariants][])('%s: forward, row statistics, dQ and dK·dV at D = 64', { timeout: 600_000 }, async ([name, make], { skip }) => {
    const s = subgroupWidth(device);
    if (name === 'subgroup broadcasts' && !s) skip(); // no subgroups on this adapter
    const variants = make(s);
    const kernels = [
      attentionForwardKernel(64, variants.forward), attentionRowStatsKernel(64),
      attentionBackwardDqKernel(64, variants.dq), attentionBackwardDkvKernel(64, variants.dkv),
    ];
    expect(await expectCompiles(device, kernels)).toBe(4);
  });
});
