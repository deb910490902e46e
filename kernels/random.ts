// Counter-based random numbers on the GPU: Philox4x32-10 (Salmon et al., SC'11), the generator
// behind cuRAND and PyTorch's CUDA RNG. Element i of a draw uses counter (i / 4, 0, stream, 0) and key
// (seed, 0x9E3779B9 ^ stream), so a (seed, stream) pair always gives the same tensor, on any device, and the
// CPU reference below reproduces it bit for bit (uniform) or to a few f32 roundings (normal: ~1e-6 for
// standard draws). Normal draws use our own log, sin and cos (kernels/math-wgsl.ts), not the builtins,
// whose WGSL accuracy (2^-11 for sin/cos) would make random initializations differ between adapters.

import { Params, grid1d, launch, pointwiseKernel, type Kernel } from './wgsl.js';
import { LOG_WGSL, SINCOS_TURNS_WGSL } from './math-wgsl.js';
import type { Tensor } from '../engine/tensor.js';

export type RandomDistribution = 'uniform' | 'normal';

const WG = 128;
const PARAM_WORDS = 6; // [n, seed, stream, a(f32), b(f32), offset]

const PHILOX_WGSL = `
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
  // 32x32 -> 64-bit product from 16-bit halves (WGSL has no wide multiply).
  let a0 = a & 0xffffu; let a1 = a >> 16u;
  let b0 = b & 0xffffu; let b1 = b >> 16u;
  let p00 = a0 * b0; let p01 = a0 * b1; let p10 = a1 * b0; let p11 = a1 * b1;
  let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  let hi = p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
  return vec2<u32>(hi, a * b);
}
fn philox4x32(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = counter;
  var k = key;
  for (var r = 0u; r < 10u; r++) {
    let p0 = mulhilo(0xD2511F53u, c.x);
    let p1 = mulhilo(0xCD9E8D57u, c.z);
    c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
    k = k + vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
  }
  return c;
}
// 24 random bits -> [0, 1) exactly representable in f32.
fn toUnit(x: u32) -> f32 { return f32(x >> 8u) * 5.9604644775390625e-8; }
`;

export function randomKernel(dist: RandomDistribution): Kernel {
  const draw =
    dist === 'uniform'
      ? `let v = vec4<f32>(toUnit(r.x), toUnit(r.y), toUnit(r.z), toUnit(r.w)) * (pf(4u) - pf(3u)) + pf(3u);`
      : `// Box-Muller on (r.x, r.y) and (r.z, r.w); u1 in (0, 1] so the log stays finite. The angle
  // 2π(u2 - 1/2) in [-π, π) is handed over in turns, where the range reduction is exact.
  let u1 = vec2<f32>(toUnit(r.x), toUnit(r.z)) + 5.9604644775390625e-8;
  let u2 = vec2<f32>(toUnit(r.y), toUnit(r.w)) - 0.5;
  // sqrt stays the builtin: its bound (from 1.0 / inverseSqrt, ~4.5 ULP) is relative, tight enough.
  let rad = sqrt(-2.0 * vec2<f32>(log_f32(u1.x), log_f32(u1.y)));
  let a = sincos_turns(u2.x);
  let b = sincos_turns(u2.y);
  let v = vec4<f32>(rad.x * a.y, rad.x * a.x, rad.y * b.y, rad.y * b.x) * pf(4u) + pf(3u);`;
  // Invocation i draws elements 4i..4i+3 from counter (i, 0, stream, 0).
  return pointwiseKernel({
    key: `random:${dist}`,
    name: `random_${dist}`,
    comment: `random ${dist} (Philox4x32-10)`,
    paramWords: PARAM_WORDS,
    buffers: { out: 'read_write' },
    wg: WG,
    helpers: dist === 'normal' ? PHILOX_WGSL + LOG_WGSL + SINCOS_TURNS_WGSL : PHILOX_WGSL,
    count: '(pu(0u) + 3u) / 4u',
    body: `let n = pu(0u);
  let stream = pu(2u);
  let r = philox4x32(vec4<u32>(i, 0u, stream, 0u), vec2<u32>(pu(1u), 0x9E3779B9u ^ stream));
  ${draw}
  let base = pu(5u) + i * 4u;
  for (var j = 0u; j < 4u; j++) {
    if (i * 4u + j < n) { out[base + j] = v[j]; }
  }`,
  });
}

/** Fills the contiguous tensor `out` with draws of `dist` for (seed, stream); a, b as in randomParams. */
export function randomFill(out: Tensor, dist: RandomDistribution, seed: number, stream: number, a: number, b: number): void {
  if (out.size === 0) return;
  launch(randomKernel(dist), { out }, randomParams(out.size, seed, stream, a, b), randomWorkgroups(out.size));
}

/** For uniform: a = low, b = high. For normal: a = mean, b = std. */
export function randomParams(n: number, seed: number, stream: number, a: number, b: number): Uint32Array {
  return new Params().u32(n, seed, stream).f32(a, b).u32(0).toArray();
}

export function randomWorkgroups(n: number): [number, number] {
  return grid1d(Math.ceil(n / 4), WG);
}

// ---- CPU reference ----

function mulhilo(a: number, b: number): [number, number] {
  const hi = Number((BigInt(a >>> 0) * BigInt(b >>> 0)) >> 32n) >>> 0;
  return [hi, Math.imul(a, b) >>> 0];
}

export function philox4x32Cpu(counter: [number, number, number, number], key: [number, number]): number[] {
  let [c0, c1, c2, c3] = counter;
  let [k0, k1] = key;
  for (let r = 0; r < 10; r++) {
    const [h0, l0] = mulhilo(0xd2511f53, c0);
    const [h1, l1] = mulhilo(0xcd9e8d57, c2);
    [c0, c1, c2, c3] = [(h1 ^ c1 ^ k0) >>> 0, l1, (h0 ^ c3 ^ k1) >>> 0, l0];
    k0 = (k0 + 0x9e3779b9) >>> 0;
    k1 = (k1 + 0xbb67ae85) >>> 0;
  }
  return [c0, c1, c2, c3];
}

/** CPU reference for randomKernel: the same (seed, stream) gives the same numbers. */
export function randomCpu(dist: RandomDistribution, n: number, seed: number, stream: number, a: number, b: number): Float64Array {
  const out = new Float64Array(n);
  const unit = (x: number) => Math.fround((x >>> 8) * 5.9604644775390625e-8);
  for (let g = 0; g * 4 < n; g++) {
    const r = philox4x32Cpu([g, 0, stream >>> 0, 0], [seed >>> 0, (0x9e3779b9 ^ stream) >>> 0]);
    let v: number[];
    if (dist === 'uniform') {
      v = r.map((x) => unit(x) * (b - a) + a);
    } else {
      const u1 = [unit(r[0]) + 5.9604644775390625e-8, unit(r[2]) + 5.9604644775390625e-8];
      const u2 = [unit(r[1]), unit(r[3])];
      const rad = u1.map((u) => Math.sqrt(-2 * Math.log(u)));
      const th = u2.map((u) => 2 * Math.PI * (u - 0.5));
      v = [rad[0] * Math.cos(th[0]), rad[0] * Math.sin(th[0]), rad[1] * Math.cos(th[1]), rad[1] * Math.sin(th[1])].map((x) => x * b + a);
    }
    for (let j = 0; j < 4 && g * 4 + j < n; j++) out[g * 4 + j] = v[j];
  }
  return out;
}
