// IEEE binary16 (f16) conversions on the CPU: the reference of the cast kernels (kernels/cast.ts) and
// how an f16 tensor is read back (Tensor.data()). f16 tensors are stored packed, two per u32 word,
// element i in the low half of word i/2 when i is even (little-endian, as WGSL's unpack2x16float).

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** The f32 nearest `x`, then the nearest f16 (ties to even) as its 16 bits; overflow gives ±inf, NaN stays NaN. */
export function halfBits(x: number): number {
  scratchF32[0] = x;
  const bits = scratchU32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | (mant ? 0x7e00 : 0x7c00);
  // |x| = sig · 2^(exp - 150) with the 24-bit significand sig; f16 keeps 11 bits (subnormals: fewer).
  const sig = exp === 0 ? mant : mant | 0x800000;
  const e = (exp === 0 ? 1 : exp) - 127 + 15; // the f16 biased exponent before rounding
  // Bits dropped from sig: 13 for normals, more below f16's smallest normal exponent (1).
  const drop = e >= 1 ? 13 : 13 + (1 - e);
  if (drop > 25) return sign; // below half the smallest subnormal (and f32 subnormals): ±0
  const kept = sig >>> drop;
  const rest = sig - kept * 2 ** drop;
  const half = 2 ** (drop - 1);
  const rounded = kept + (rest > half || (rest === half && (kept & 1)) ? 1 : 0);
  // Normals: rounded is 1.mant in 11 bits (a carry into bit 11 bumps the exponent); subnormals: the
  // mantissa itself, where a carry into bit 10 makes the smallest normal, as the bit layout wants.
  const value = e >= 1 ? ((e - 1) << 10) + rounded : rounded;
  return value >= 0x7c00 ? sign | 0x7c00 : sign | value;
}

/** The value of f16 bits `h`: subnormals, ±0, ±inf and NaN included. */
export function halfValue(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + mant / 1024);
}

/** `x` rounded to f16 and back (what an f16 operand holds), as a number. */
export function roundHalf(x: number): number {
  return halfValue(halfBits(x));
}

/** `count` f16 values from packed words, starting at element `first` of `words`. */
export function unpackHalves(words: Uint32Array, first: number, count: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const e = first + i;
    out[i] = halfValue((words[e >>> 1] >>> ((e & 1) * 16)) & 0xffff);
  }
  return out;
}
