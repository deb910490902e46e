// The f32 <-> f16 cast kernels against the CPU reference (engine/half.ts), which is itself checked
// against the independent converter the checkpoint reader uses (models/half.ts): every rounding case
// (ties to even, carries into the exponent), overflow to ±inf, NaN, f16 subnormals and underflow to ±0.
// f32 -> f16 must be bit-exact; f16 -> f32 is exact for every one of the 65536 bit patterns.

import { beforeAll, describe, expect, it } from 'vitest';
import { castToFloat, castToHalf } from '../../kernels/cast.js';
import { halfBits, halfValue, roundHalf } from '../../engine/half.js';
import { f32ToF16 } from '../../models/half.js';
import type { Device } from '../../engine/node.js';
import { getDevice, seededValues } from '../helpers.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

/** Values that hit every branch of the rounding. */
function edgeValues(): number[] {
  const v = [0, -0, 1, -1, 65504, -65504, 65519.99, 65520, 65536, 1e5, -1e9, 3.4e38, Infinity, -Infinity, NaN,
    2 ** -14, 2 ** -24, 2 ** -25, 2 ** -25 * 1.0001, 3 * 2 ** -26, 2 ** -26, 1e-8, 1e-40, -1e-40, 2 ** -24 * 1.5, 2 ** -24 * 2.5,
    1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -11 + 2 ** -20, 2047.5, 2048.5, 2049, 0.1, -0.3, 6.1e-5, 6.09e-5];
  for (let e = -30; e <= 17; e++) for (const m of [1, 1.25, 1.5, 1.9990234375, 1.99951171875]) v.push(m * 2 ** e, -m * 2 ** e);
  return v;
}

describe('f16 CPU reference', () => {
  it('halfBits agrees with models/half.ts on edge values and random values over the whole range', () => {
    const values = [...edgeValues(), ...Array.from(seededValues(20000, 7, -1, 1), (u, i) => u * 2 ** ((i % 60) - 40))];
    for (const x of values) expect(halfBits(x), `x = ${x}`).toBe(f32ToF16(x));
  });

  it('halfValue is exact for every bit pattern: the encoder gives the pattern back, and values increase with it', () => {
    // (models/half.ts decodes with halfValue too, so the check is against the independent encoders.)
    let previous = -1;
    for (let h = 0; h < 65536; h++) {
      const a = halfValue(h);
      const exp = (h >> 10) & 0x1f;
      if (exp === 0x1f && h & 0x3ff) {
        expect(Number.isNaN(a)).toBe(true);
        continue;
      }
      expect(halfBits(a), `h = ${h}`).toBe(h === 0x8000 ? 0x8000 : h);
      expect(f32ToF16(a), `h = ${h}`).toBe(h);
      if (h < 0x7c00) {
        expect(a > previous || h === 0).toBe(true);
        previous = a;
      }
    }
    expect(roundHalf(65520)).toBe(Infinity); // rounds up past the largest finite f16, 65504
    expect(roundHalf(2 ** -25)).toBe(0); // a tie with 0: to even
    expect(roundHalf(3 * 2 ** -26)).toBe(2 ** -24);
  });
});

describe('cast kernels', () => {
  it('f32 -> f16 is bit-exact round to nearest even, with overflow, NaN and subnormals (odd length, offset view)', async () => {
    const values = [...edgeValues(), ...Array.from(seededValues(4001, 3, -4, 4))];
    const src = device.tensor(Float32Array.from([7, ...values]));
    const view = src.narrow(0, 1, values.length); // element offset 1: the kernel reads from an odd offset
    const h = castToHalf(view);
    expect(h.dtype).toBe('f16');
    const got = await h.data();
    const f32 = Float32Array.from(values);
    for (let i = 0; i < values.length; i++) {
      const want = halfValue(halfBits(f32[i]));
      if (Number.isNaN(want)) expect(Number.isNaN(got[i]), `x = ${f32[i]}`).toBe(true);
      else expect(Object.is(got[i], want) || got[i] === want, `x = ${f32[i]}: got ${got[i]}, want ${want}`).toBe(true);
    }
    for (const t of [src, view, h]) t.dispose();
  });

  it('f16 -> f32 is exact for all 65536 bit patterns, from an odd element offset too', async () => {
    // Build the f16 tensor from exact f16 values (every pattern but NaNs, which have no unique f32).
    const patterns = Array.from({ length: 65536 }, (_, h) => h).filter((h) => !Number.isNaN(halfValue(h)));
    const values = Float32Array.from(patterns, halfValue);
    const src = device.tensor(values);
    const h = castToHalf(src);
    const back = castToFloat(h);
    expect(back.dtype).toBe('f32');
    expect(Array.from(await back.data())).toEqual(Array.from(values));
    const odd = h.narrow(0, 1, 1001);
    const oddBack = castToFloat(odd);
    expect(Array.from(await oddBack.data())).toEqual(Array.from(values.subarray(1, 1002)));
    for (const t of [src, h, back, odd, oddBack]) t.dispose();
  });

  it('f16 tensors are refused by kernels that take f32, with the tensor named', () => {
    const h = castToHalf(device.tensor([1, 2, 3]));
    expect(() => h.add(1)).toThrow(/takes f32, got an f16 tensor/);
    h.dispose();
  });
});
