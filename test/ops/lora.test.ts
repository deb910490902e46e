// The LoRA linear (engine/ops/lora.ts): forward and finite-difference gradients against an f64 CPU
// reference, for a whole-output adapter with GELU, q/v-only adapters on a fused qkv with a residual,
// and seeded dropout (its mask from the CPU Philox reference, kernels/random.ts).

import { beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../../engine/node.js';
import { loraLinear, seededDropout } from '../../engine/ops/lora.js';
import { elementwiseCpu } from '../../kernels/elementwise.js';
import { randomCpu } from '../../kernels/random.js';
import { expectClose, getDevice, seededValues } from '../helpers.js';
import { gradCheck } from '../gradcheck.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

/** y[r, o] = Σ_i x[r, i]·w[o, i] for x [rows, inF], w [outF, inF]. */
function linearCpu(x: Float64Array, w: Float64Array, rows: number, inF: number, outF: number): Float64Array {
  const y = new Float64Array(rows * outF);
  for (let r = 0; r < rows; r++) for (let o = 0; o < outF; o++) {
    let s = 0;
    for (let i = 0; i < inF; i++) s += x[r * inF + i] * w[o * inF + i];
    y[r * outF + o] = s;
  }
  return y;
}

/** W + s·B·A restricted to row block `block` of `blocks`: the merged weight, the reference of the op. */
function mergedCpu(w: Float64Array, outF: number, inF: number, blocks: number, adapters: ([Float64Array, Float64Array] | null)[], rank: number, s: number): Float64Array {
  const out = Float64Array.from(w);
  const bo = outF / blocks;
  adapters.forEach((f, k) => {
    if (!f) return;
    const [a, b] = f;
    for (let o = 0; o < bo; o++) for (let i = 0; i < inF; i++) {
      let v = 0;
      for (let j = 0; j < rank; j++) v += b[o * rank + j] * a[j * inF + i];
      out[(k * bo + o) * inF + i] += s * v;
    }
  });
  return out;
}

describe('loraLinear', () => {
  it('gradient check: one adapter over the whole output, bias and GELU', async () => {
    const [rows, inF, outF, r] = [2 * 3, 5, 4, 2];
    const s = 16 / r;
    await gradCheck(device, {
      name: 'lora-gelu',
      inputs: [{ shape: [2, 3, inF] }, { shape: [outF, inF] }, { shape: [outF] }, { shape: [r, inF] }, { shape: [outF, r] }],
      gpu: ([x, w, b, a, bb]) => loraLinear(x, w, b, { gelu: true, scale: s, adapters: [{ a, b: bb }] }),
      cpu: ([x, w, b, a, bb]) => {
        const y = linearCpu(x, mergedCpu(w, outF, inF, 1, [[a, bb]], r, s), rows, inF, outF).map((v, i) => v + b[i % outF]);
        return elementwiseCpu('gelu', [y]);
      },
      atol: 5e-5,
    });
  });

  it('gradient check: q and v adapters on a fused qkv (k untouched), frozen W, with a residual', async () => {
    const [rows, d, r] = [4, 3, 2];
    const s = 0.5;
    await gradCheck(device, {
      name: 'lora-qv',
      inputs: [
        { shape: [rows, d] }, { shape: [3 * d, d], grad: false }, { shape: [3 * d] },
        { shape: [r, d] }, { shape: [d, r] }, { shape: [r, d] }, { shape: [d, r] }, { shape: [rows, 3 * d] },
      ],
      gpu: ([x, w, b, aq, bq, av, bv, res]) => loraLinear(x, w, b, { scale: s, residual: res, adapters: [{ a: aq, b: bq }, null, { a: av, b: bv }] }),
      cpu: ([x, w, b, aq, bq, av, bv, res]) =>
        linearCpu(x, mergedCpu(w, 3 * d, d, 3, [[aq, bq], null, [av, bv]], r, s), rows, d, 3 * d).map((v, i) => v + b[i % (3 * d)] + res[i]),
    });
  });

  it('gradient check: seeded dropout on the adapter input (the base path sees x undropped)', async () => {
    const [rows, inF, outF, r, p, seed] = [6, 4, 3, 2, 0.3, 1234];
    const u = randomCpu('uniform', rows * inF, seed, 0, 0, 1);
    const mask = Float64Array.from(u, (v) => (v >= p ? 1 / (1 - p) : 0));
    expect(mask.some((m) => m === 0) && mask.some((m) => m > 0)).toBe(true);
    await gradCheck(device, {
      name: 'lora-dropout',
      inputs: [{ shape: [rows, inF] }, { shape: [outF, inF] }, { shape: [r, inF] }, { shape: [outF, r] }],
      gpu: ([x, w, a, b]) => loraLinear(x, w, null, { scale: 2, adapters: [{ a, b }], dropout: { p, seed } }),
      cpu: ([x, w, a, b]) => {
        const base = linearCpu(x, w, rows, inF, outF);
        const xd = x.map((v, i) => v * mask[i]);
        const delta = linearCpu(linearCpu(xd, a, rows, inF, r), b, rows, r, outF);
        return base.map((v, i) => v + 2 * delta[i]);
      },
    });
  });

  it('dropout draws the same mask for the same seed, another for another seed, and none at p = 0', async () => {
    const x = device.tensor(seededValues(64, 3), [8, 8]);
    const a = await seededDropout(x, 0.5, 7).data();
    const b = await seededDropout(x, 0.5, 7).data();
    const c = await seededDropout(x, 0.5, 8).data();
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
    expect(seededDropout(x, 0, 7)).toBe(x);
  });

  it('B = 0 gives exactly the base linear', async () => {
    const x = device.tensor(seededValues(5 * 8, 4), [5, 8]);
    const w = device.tensor(seededValues(6 * 8, 5), [6, 8]);
    const bias = device.tensor(seededValues(6, 6), [6]);
    const a = device.tensor(seededValues(2 * 8, 7), [2, 8]);
    const { linear } = await import('../../engine/node.js');
    const base = await linear(x, w, bias).data();
    const withLora = await loraLinear(x, w, bias, { scale: 8, adapters: [{ a, b: device.zeros([6, 2]) }] }).data();
    expectClose(withLora, base, { atol: 0, rtol: 0 });
  });
});
