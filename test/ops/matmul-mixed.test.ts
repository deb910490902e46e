// linear in mixed precision (engine/ops/matmul-mixed.ts): forward and gradients against a CPU model of
// what f16 operands allow. The CPU rounds x, W and the output's gradient dz to f16 (engine/half.ts)
// exactly where the GPU does, so the products must agree to the f32 accumulation tolerance; the bias
// gradient and GELU stay f32. Against the exact f32 linear (the CPU in f64 without rounding) the
// difference is the operands' rounding, at most 2^-10·Σ|a·b| per element (each product is off by at
// most 2·2^-11 relative). With GELU, dz = gelu'(z)·g depends on z, which the GPU computes in f32 to a
// few ulps of the CPU's: an element of dz near a rounding boundary of f16 may round one f16 ulp (2^-10
// relative) the other way, so dx and dW get 2^-10·Σ|dz|·|operand| on top.

import { beforeAll, describe, expect, it } from 'vitest';
import { matmulCpu } from '../../kernels/matmul.js';
import { ELEMENTWISE_OPS } from '../../kernels/elementwise.js';
import { roundHalf } from '../../engine/half.js';
import { withPrecision } from '../../engine/precision.js';
import { linear, type Device, type Tensor } from '../../engine/node.js';
import { expectClose, getDevice, permuteCpu, seededValues } from '../helpers.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

const tol = (k: number) => ({ atol: 4e-6 * Math.sqrt(k) + 2e-6, rtol: 2e-5 });
const geluCpu = (z: number) => ELEMENTWISE_OPS.gelu.cpu([z]);
const geluGradCpu = (z: number, g: number) => ELEMENTWISE_OPS.geluGrad.cpu([z, g]);

/** |actual − expected| ≤ atol + rtol·|expected| + flip·scale per element. */
function expectWithin(actual: ArrayLike<number>, expected: ArrayLike<number>, scale: ArrayLike<number>, flip: number, t: { atol: number; rtol: number }, what: string): void {
  for (let i = 0; i < expected.length; i++) {
    const bound = t.atol + t.rtol * Math.abs(expected[i]) + flip * scale[i];
    if (!(Math.abs(actual[i] - expected[i]) <= bound)) throw new Error(`${what}[${i}]: got ${actual[i]}, expected ${expected[i]} ± ${bound}`);
  }
}

describe.each([false, true])('mixed linear (gelu %s)', (gelu) => {
  it('forward and x, W, bias, residual gradients match the f16-operand CPU model', async () => {
    const [batch, rows, inF, outF] = [2, 7, 36, 20];
    const m = batch * rows;
    const xv = seededValues(m * inF, 1, -2, 2);
    const wv = seededValues(outF * inF, 2, -1, 1);
    const bv = seededValues(outF, 3);
    const rv = seededValues(m * outF, 4);
    const upstream = seededValues(m * outF, 5, -3, 3); // the loss is Σ y·upstream
    const x = device.tensor(xv, [batch, rows, inF]).requireGrad();
    const w = device.tensor(wv, [outF, inF]).requireGrad();
    const b = device.tensor(bv, [outF]).requireGrad();
    const res = device.tensor(rv, [batch, rows, outF]).requireGrad();
    const y = withPrecision('mixed', () => linear(x, w, b, { gelu, residual: res }));
    const loss = y.mul(device.tensor(upstream, [batch, rows, outF])).sum();
    loss.backward();

    const xr = Float64Array.from(xv, roundHalf);
    const wr = Float64Array.from(wv, roundHalf);
    const wT = permuteCpu(wr, [outF, inF], [1, 0]);
    const z = matmulCpu(xr, wT, 1, m, inF, outF).map((v, i) => v + bv[i % outF]);
    const yRef = z.map((v, i) => (gelu ? geluCpu(v) : v) + rv[i]);
    expectClose(await y.data(), yRef, tol(inF), 'y');

    const dz = z.map((v, i) => (gelu ? geluGradCpu(v, upstream[i]) : upstream[i]));
    const dzr = dz.map(roundHalf);
    const flip = gelu ? 2 ** -10 : 0;
    const absDz = dz.map(Math.abs);
    expectWithin(await x.grad!.data(), matmulCpu(dzr, wr, 1, m, outF, inF), matmulCpu(absDz, wr.map(Math.abs), 1, m, outF, inF), flip, tol(outF), 'dx');
    const dzT = (v: Float64Array) => permuteCpu(v, [m, outF], [1, 0]);
    expectWithin(await w.grad!.data(), matmulCpu(dzT(dzr), xr, 1, outF, m, inF), matmulCpu(dzT(absDz), xr.map(Math.abs), 1, outF, m, inF), flip, tol(m), 'dW');
    const db = new Float64Array(outF);
    dz.forEach((v, i) => (db[i % outF] += v));
    expectClose(await b.grad!.data(), db, tol(m), 'db (f32)');
    expectClose(await res.grad!.data(), upstream, { atol: 0 }, 'dresidual');

    // Against the exact (f32-operand) linear: within the f16 rounding bound.
    const exact = matmulCpu(xv, permuteCpu(wv, [outF, inF], [1, 0]), 1, m, inF, outF);
    const absProd = matmulCpu(xv.map(Math.abs), permuteCpu(wv.map(Math.abs), [outF, inF], [1, 0]), 1, m, inF, outF);
    const zGpuMinusBias = Float64Array.from(z, (v, i) => v - bv[i % outF]);
    for (let i = 0; i < exact.length; i++) {
      expect(Math.abs(zGpuMinusBias[i] - exact[i])).toBeLessThanOrEqual(2 ** -10 * absProd[i] + 1e-6);
    }
    for (const t of [x, w, b, res, y, loss]) t.dispose();
  });
});

it('mixed linear keeps an f16 copy of x for backward, and the weight itself', async () => {
  const [m, inF, outF] = [64, 128, 96];
  const x = device.tensor(seededValues(m * inF, 1), [m, inF]).requireGrad();
  const w = device.tensor(seededValues(outF * inF, 2), [outF, inF]).requireGrad();
  const saved = (p: 'f32' | 'mixed') => {
    const y = withPrecision(p, () => linear(x, w));
    const bytes = y.gradFn!.saved.reduce((s, t: Tensor) => s + t.size * (t.dtype === 'f16' ? 2 : 4), 0);
    const dtypes = y.gradFn!.saved.map((t: Tensor) => t.dtype);
    y.dispose();
    return { bytes, dtypes };
  };
  expect(saved('f32')).toEqual({ bytes: 4 * (m * inF + outF * inF), dtypes: ['f32', 'f32'] });
  // x as f16; W is the f32 parameter itself (cast again in backward), so nothing is added for it.
  expect(saved('mixed')).toEqual({ bytes: 2 * m * inF + 4 * outF * inF, dtypes: ['f16', 'f32'] });
  x.dispose();
  w.dispose();
});

describe('mixed linear: what backward keeps', () => {
  it('fc1 (GELU) → fc2: fc2 keeps no copy of its input (recomputed from the pre-activation), with the same gradients', async () => {
    const { tidy } = await import('../../engine/node.js');
    const [m, inF, hid, outF] = [12, 16, 64, 8];
    const make = (seed: number, n: number) => seededValues(n, seed, -1, 1);
    // `detour`: fc2 gets a fresh tensor equal to fc1's output (x + 0 is exact), which has no recipe:
    // that is the old behaviour, an f16 copy of the input saved by fc2.
    const run = async (detour: boolean) => {
      const x = device.tensor(make(1, m * inF), [m, inF]).requireGrad();
      const w1 = device.tensor(make(2, hid * inF), [hid, inF]).requireGrad();
      const w2 = device.tensor(make(3, outF * hid), [outF, hid]).requireGrad();
      const before = device.memory().liveBytes;
      const y = tidy(() => withPrecision('mixed', () => {
        const h = linear(x, w1, null, { gelu: true });
        return linear(detour ? h.add(0) : h, w2, null);
      }));
      const kept = device.memory().liveBytes - before;
      y.backward(device.tensor(make(4, m * outF), [m, outF]));
      const grads = await Promise.all([x, w1, w2].map(async (t) => Array.from(await t.grad!.data())));
      for (const t of [x, w1, w2, y]) t.dispose();
      return { kept, grads };
    };
    const recomputed = await run(false);
    const copied = await run(true);
    expect(recomputed.grads).toEqual(copied.grads);
    // The f16 copy of fc2's input: m·hid halves, rounded up to the pool's size class.
    expect(copied.kept - recomputed.kept).toBeGreaterThanOrEqual(m * hid * 2);
  });
});
