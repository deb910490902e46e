// The elementwise kernels (kernels/elementwise.ts) against their CPU reference, through the ops:
// unary and binary math, broadcasting, scalar operands, strided views; and every kernel variant compiles.

import { beforeAll, describe, expect, it } from 'vitest';
import { ELEMENTWISE_OPS, elementwiseCpu, elementwiseKernel, elementwiseVec4Kernel, fillKernel, writeElementwise, type ElementwiseOpName } from '../../kernels/elementwise.js';
import { ShapeError, Tensor, type Device, where } from '../../engine/node.js';
import { broadcastCpu, expectClose, expectCompiles, getDevice, permuteCpu, seededValues } from '../helpers.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

// Inputs chosen per op so the math is defined (log/sqrt of positives, etc.).
const DOMAIN: Partial<Record<ElementwiseOpName, [number, number]>> = {
  log: [0.01, 5],
  sqrt: [0, 5],
  rsqrt: [0.05, 5],
  reciprocal: [0.1, 3],
};

// f32 kernels vs f64 reference. Where an op rests on a WGSL builtin, the tolerance covers what the WGSL
// spec guarantees for it on every adapter ("Accuracy of Concrete Floating Point Expressions"), not what
// one driver's libm happens to do (ULP of a value v is at most 2^-23·|v|):
// - exp: 3 + 2·|x| ULP, so at most 11 ULP ≈ 1.3e-6·|v| on [-4, 4]; sigmoid inherits exp's and a
//   division's (2.5 ULP); tanh_f32 and gelu's erf_f32 are our formulas over exp.
// - log: 2^-21 (4.8e-7) absolute on [0.5, 2], 3 ULP outside; sqrt: from 1.0 / inverseSqrt (2 + 2.5 ULP);
//   rsqrt 2 ULP; reciprocal 2.5 ULP: all inside the default 1e-6 + 1e-6·|v|.
// - pow: from exp2(y·log2(x)), whose error grows with |y·log2(x)|.
// - sin, cos: WGSL allows 2^-11 (4.9e-4) absolute on [-π, π] only, and SwiftShader is 1.9e-4 off, so
//   the ops use our own (kernels/math-wgsl.ts), good to ~1e-7 absolute: tolerance 2e-7.
const TOL: Partial<Record<ElementwiseOpName, { atol: number; rtol: number }>> = {
  exp: { atol: 1e-6, rtol: 2e-6 },
  gelu: { atol: 2e-6, rtol: 2e-6 },
  tanh: { atol: 2e-6, rtol: 2e-6 },
  sigmoid: { atol: 1e-6, rtol: 2e-6 },
  sin: { atol: 2e-7, rtol: 0 },
  cos: { atol: 2e-7, rtol: 0 },
  pow: { atol: 1e-5, rtol: 1e-5 },
  powScalar: { atol: 1e-5, rtol: 1e-5 },
};

const unaryOps = (Object.keys(ELEMENTWISE_OPS) as ElementwiseOpName[]).filter(
  (op) => ELEMENTWISE_OPS[op].inputs === 1 && !['addScalar', 'mulScalar', 'rsubScalar', 'rdivScalar', 'divScalar', 'powScalar', 'clamp'].includes(op),
);

describe('unary ops match the CPU reference on an odd shape', () => {
  const shape = [3, 7, 13];
  it.each(unaryOps)('%s', async (op) => {
    const [lo, hi] = DOMAIN[op] ?? [-4, 4];
    const x = seededValues(3 * 7 * 13, 11, lo, hi);
    const t = device.tensor(x, shape);
    const y = (t as unknown as Record<string, () => typeof t>)[op] ? (t as unknown as Record<string, () => typeof t>)[op]() : null;
    const out = y ?? (await import('../../engine/node.js')).unary(op, t);
    expect(out.shape).toEqual(shape);
    expectClose(await out.data(), elementwiseCpu(op, [x]), TOL[op] ?? { atol: 1e-6, rtol: 1e-6 }, op);
    t.dispose();
    out.dispose();
  });
});

describe('sin and cos are our own, adapter-independent', () => {
  it('stay within 2e-7 of f64 up to |x| = 12868, and 2e-6 up to 1e5', async () => {
    for (const [bound, atol] of [[12868, 2e-7], [1e5, 2e-6]]) {
      const x = seededValues(4099, 17, -bound, bound);
      x.set([0, Math.fround(Math.PI / 2), Math.fround(-Math.PI), 8192 * Math.fround(Math.PI / 2)], 0);
      const t = device.tensor(x);
      expectClose(await t.sin().data(), Array.from(x, Math.sin), { atol, rtol: 0 }, `sin up to ${bound}`);
      expectClose(await t.cos().data(), Array.from(x, Math.cos), { atol, rtol: 0 }, `cos up to ${bound}`);
      t.dispose();
    }
  });

  it('give NaN for ±inf and NaN', async () => {
    const t = device.tensor([Infinity, -Infinity, NaN]);
    for (const v of [...(await t.sin().data()), ...(await t.cos().data())]) expect(v).toBeNaN();
  });
});

describe('binary ops with broadcasting', () => {
  const cases: [readonly number[], readonly number[], readonly number[]][] = [
    [[5, 9], [5, 9], [5, 9]],
    [[7, 1, 5], [3, 5], [7, 3, 5]],
    [[1], [31, 3], [31, 3]],
    [[2, 1, 3, 1], [1, 4, 1, 6], [2, 4, 3, 6]],
  ];
  const ops = ['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum'] as const;
  for (const op of ops) {
    it.each(cases)(`${op} %j with %j`, async (sa, sb, so) => {
      const na = sa.reduce((p, q) => p * q, 1);
      const nb = sb.reduce((p, q) => p * q, 1);
      const a = op === 'pow' ? seededValues(na, 3, 0.1, 3) : seededValues(na, 3, -3, 3);
      const b = op === 'div' ? seededValues(nb, 4, 0.5, 3) : op === 'pow' ? seededValues(nb, 4, -2, 2) : seededValues(nb, 4, -3, 3);
      const ta = device.tensor(a, sa);
      const tb = device.tensor(b, sb);
      const out = ta[op](tb);
      expect(out.shape).toEqual(so);
      const ref = elementwiseCpu(op, [broadcastCpu(a, sa, so), broadcastCpu(b, sb, so)]);
      expectClose(await out.data(), ref, TOL[op] ?? { atol: 1e-6, rtol: 1e-6 }, op);
    });
  }

  it('rejects shapes that do not broadcast, naming both', () => {
    const a = device.zeros([3, 4]);
    const b = device.zeros([5, 4]);
    expect(() => a.add(b)).toThrow(ShapeError);
    expect(() => a.add(b)).toThrow(/\[3, 4\] and \[5, 4\]/);
  });
});

describe('scalar operands', () => {
  it('tensor op number and number op tensor', async () => {
    const x = seededValues(257, 5, 0.5, 2);
    const t = device.tensor(x);
    const check = async (got: typeof t, f: (v: number) => number) =>
      expectClose(await got.data(), Array.from(x, f), { atol: 1e-6, rtol: 1e-6 });
    await check(t.add(2.5), (v) => v + 2.5);
    await check(t.sub(1.25), (v) => v - 1.25);
    await check(t.mul(-3), (v) => v * -3);
    await check(t.div(3), (v) => v / 3);
    await check(t.pow(2), (v) => v * v);
    await check(t.pow(0.5), (v) => Math.sqrt(v));
    await check(t.maximum(1), (v) => Math.max(v, 1));
    await check(t.minimum(1), (v) => Math.min(v, 1));
    await check(t.clamp(0.7, 1.3), (v) => Math.min(Math.max(v, 0.7), 1.3));
    const { sub, div } = await import('../../engine/node.js');
    await check(sub(10, t), (v) => 10 - v);
    await check(div(1, t), (v) => 1 / v);
  });

  it('pow of negative bases follows PyTorch', async () => {
    const t = device.tensor([-2, -2, -2, 0, 2]);
    const out = await t.pow(device.tensor([2, 3, 0.5, 0, -1])).data();
    expect(out[0]).toBe(4);
    expect(out[1]).toBe(-8);
    expect(Number.isNaN(out[2])).toBe(true);
    expect(out[3]).toBe(1);
    expect(out[4]).toBe(0.5);
  });

  it('tanh, sigmoid and gelu stay finite for large inputs', async () => {
    const t = device.tensor([-100, -30, 30, 100]);
    expect(Array.from(await t.tanh().data())).toEqual([-1, -1, 1, 1]);
    expectClose(await t.sigmoid().data(), [0, 1 / (1 + Math.exp(30)), 1, 1], { atol: 0, rtol: 1e-5 });
    expectClose(await t.gelu().data(), [0, 0, 30, 100], { atol: 0, rtol: 0 });
  });
});

describe('strided inputs', () => {
  it('elementwise ops read transposed and sliced views in place', async () => {
    const shape = [6, 11, 5];
    const x = seededValues(6 * 11 * 5, 9);
    const t = device.tensor(x, shape);
    const p = t.permute([2, 0, 1]); // [5, 6, 11], non-contiguous
    expect(p.isContiguous).toBe(false);
    const ref = permuteCpu(x, shape, [2, 0, 1]);
    expectClose(await p.exp().data(), Array.from(ref, Math.exp), { atol: 1e-6, rtol: 2e-6 });
    expectClose(await p.add(p).data(), Array.from(ref, (v) => 2 * v));
    const s = t.slice([1, 2, 1], [5, 9, 4]); // [4, 7, 3]
    const sref: number[] = [];
    for (let i = 1; i < 5; i++) for (let j = 2; j < 9; j++) for (let k = 1; k < 4; k++) sref.push(x[i * 55 + j * 5 + k] * 2);
    expectClose(await s.mul(2).data(), sref);
  });

  it('where(cond, a, b) picks per element', async () => {
    const c = device.tensor([1, 0, 1, 0]);
    const out = where(c, device.tensor([1, 2, 3, 4]), device.tensor([-1, -2, -3, -4]));
    expect(Array.from(await out.data())).toEqual([1, -2, 3, -4]);
  });

  it('handles more than 65535 workgroups of elements', async () => {
    const n = 256 * 65535 + 1000; // folds the launch into y
    const t = device.full([n], 1.5);
    const s = await t.mul(2).sum().item();
    expect(s).toBe(3 * n);
  });
});

describe('elementwise kernel variants', () => {
  it('every op compiles with linear and with strided operands, and fill compiles', async () => {
    const kernels = [fillKernel()];
    for (const op of Object.keys(ELEMENTWISE_OPS) as ElementwiseOpName[]) {
      const n = ELEMENTWISE_OPS[op].inputs;
      kernels.push(elementwiseKernel(op, 1, true, Array(n).fill(true)));
      kernels.push(elementwiseKernel(op, 3, false, Array(n).fill(false)));
      kernels.push(elementwiseVec4Kernel(op));
    }
    expect(await expectCompiles(device, kernels)).toBe(kernels.length);
  });
});

describe('the vec4 kernel (linear operands at vec4 offsets, sizes a multiple of 4)', () => {
  const n = 4 * 61;
  /** Inputs per op and position inside the domain its math is defined on. */
  const domain = (op: ElementwiseOpName, k: number): [number, number] => {
    if (op === 'pow' || op === 'powScalar') return k === 0 ? [0.1, 3] : [-2, 2];
    if (op === 'div' && k === 1) return [0.5, 2];
    return k === 0 ? (DOMAIN[op] ?? [-4, 4]) : [-4, 4];
  };
  const scalarsOf = (op: ElementwiseOpName) => (op === 'clamp' || op === 'clampGrad' ? [-1, 1] : [0.75]);

  it.each(Object.keys(ELEMENTWISE_OPS) as ElementwiseOpName[])('%s: vec4 at offset 4 and scalar at offset 2 both match the CPU reference', async (op) => {
    const inputs = Array.from({ length: ELEMENTWISE_OPS[op].inputs }, (_, k) => {
      const v = seededValues(n, 31 + k, ...domain(op, k));
      return op === 'where' && k === 0 ? v.map((x) => Math.round(x / 3)) : v;
    });
    const scalars = scalarsOf(op);
    const expected = elementwiseCpu(op, inputs, scalars);
    for (const at of [4, 2]) {
      // Each input and the output sit `at` elements into a larger buffer: linear views at that offset.
      const padded = inputs.map((v) => {
        const p = new Float32Array(n + 8);
        p.set(v, at);
        return device.tensor(p, [n + 8]);
      });
      const views = padded.map((t) => t.slice([at], [at + n]));
      const outBase = Tensor.empty(device, [n + 8]);
      const out = outBase.slice([at], [at + n]);
      const session = device.profile();
      writeElementwise(op, out, views, scalars);
      const got = await out.data();
      const names = (await session.stop()).kernels.map((k) => k.name);
      expect(names, `${op} at offset ${at}`).toContain(at === 4 ? `elementwise_${op}_v4` : `elementwise_${op}`);
      expectClose(got, expected, TOL[op] ?? { atol: 1e-6, rtol: 1e-6 }, `${op} at offset ${at}`);
      for (const t of [...padded, ...views, outBase, out]) t.dispose();
    }
  });
});
