// Half-precision conversions (IEEE f16 and bfloat16 <-> f32), for reading and writing checkpoints. The
// f16 encoder here is written independently of the engine's (engine/half.ts, the cast kernels'
// reference), and test/kernels/cast.test.ts checks one against the other.

import { halfValue } from '../engine/half.js';

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** IEEE binary16 bits to a number: subnormals, ±0, ±inf and NaN included (the engine's decoder). */
export const f16ToF32: (u16: number) => number = halfValue;

let f16Lookup: Float32Array | null = null;
/** f16 bit pattern → f32 for all 65536 values, built on first use. */
export function f16Table(): Float32Array {
  if (!f16Lookup) {
    f16Lookup = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) f16Lookup[i] = f16ToF32(i);
  }
  return f16Lookup;
}

/** A number (first rounded to f32) to binary16 bits, rounding to nearest even; overflow gives ±inf. */
export function f32ToF16(x: number): number {
  scratchF32[0] = x;
  const bits = scratchU32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | (mant ? 0x7e00 : 0x7c00);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal in f16: value = m·2^-24 with m = (1.mant)·2^(exp-126), i.e. the 24-bit significand >> (14 - e).
    const shift = 14 - e;
    if (shift > 24) return sign; // below half the smallest subnormal
    const sig = mant | 0x800000;
    let m = sig >>> shift;
    const rem = sig & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && m & 1)) m++;
    return sign | m; // m may reach 0x400, the smallest normal: still the right bits
  }
  let h = sign | (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // a carry into the exponent is correct, up to inf
  return h;
}

/** bfloat16 bits to a number (exact: bf16 is an f32's top 16 bits). */
export function bf16ToF32(u16: number): number {
  scratchU32[0] = (u16 & 0xffff) << 16;
  return scratchF32[0];
}

/** A number (first rounded to f32) to bfloat16 bits, rounding to nearest even; NaN stays a (quiet) NaN. */
export function f32ToBf16(x: number): number {
  scratchF32[0] = x;
  const bits = scratchU32[0];
  if ((bits & 0x7fffffff) > 0x7f800000) return (bits >>> 16) | 0x40;
  return Math.floor((bits + 0x7fff + ((bits >>> 16) & 1)) / 65536);
}
