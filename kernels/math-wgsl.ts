// Our own f32 sin, cos and log in WGSL, so that results do not depend on the adapter's libm.
//
// What WGSL promises for the builtins (WGSL spec, "Accuracy of Concrete Floating Point Expressions"):
//   x + y, x - y, x * y, -x, abs, floor, round, min, max, select    correctly rounded (to either neighbour:
//                                                                   WGSL fixes no rounding mode)
//   x / y                                                           2.5 ULP for |y| in [2^-126, 2^126]
//   bitcast, integer arithmetic, f32 <-> i32 of exact values        exact
//   sin(x), cos(x)       absolute error 2^-11 (4.9e-4) on [-π, π], and nothing outside it
//   log(x)               absolute error 2^-21 on [0.5, 2], 3 ULP outside
//   exp(x)               3 + 2·|x| ULP;  inverseSqrt 2 ULP;  sqrt inherited from 1.0 / inverseSqrt(x)
// Lavapipe's sin/cos happen to be correctly rounded; SwiftShader's are off by 1.9e-4, well inside the
// 2^-11. So sin, cos and log here use only the tightly specified operations above: an exact range
// reduction, then Taylor polynomials whose truncation error is below f32 rounding. They agree with the
// f64 references to ~2e-7 on every conforming adapter (tests: test/kernels/elementwise, random).
// The spec also lets an implementation reassociate and fuse (FMA) operations; fusing is harmless here,
// and the reductions are written so the exact steps stay exact in any order where noted.

/**
 * sin and cos of r in [-π/4, π/4] (Taylor to r^9 and r^10: truncation under 2e-9), and of
 * q·π/2 + r for an integer quadrant q.
 */
const SINCOS_CORE_WGSL = `
fn sin_poly(r: f32) -> f32 {
  let z = r * r;
  return r + r * z * (-0.16666667 + z * (0.008333334 + z * (-0.0001984127 + z * 2.7557319e-6)));
}
fn cos_poly(r: f32) -> f32 {
  let z = r * r;
  return 1.0 - 0.5 * z + z * z * (0.041666668 + z * (-0.0013888889 + z * (2.4801587e-5 + z * -2.7557319e-7)));
}
// sin(q·π/2 + r): q mod 4 picks sin or cos of r and the sign.
fn sin_quadrant(q: i32, r: f32) -> f32 {
  let m = q & 3;
  let v = select(sin_poly(r), cos_poly(r), (m & 1) == 1);
  return select(v, -v, m >= 2);
}
`;

/**
 * sin_f32 and cos_f32 for any f32 x. Cody–Waite reduction by π/2 = P1 + P2 + P3: k·P1 and k·P2 are
 * exact products for |k| < 8192 (P1 has 8 significant bits, P2 11), and x - k·P1 is exact (Sterbenz),
 * so the reduced argument is good to a few ULP for |x| < 8192·π/2 ≈ 12868 (absolute error ≈ 2e-7).
 * Beyond that k·P2 rounds and the error grows about |x|·2e-11 (≈ 2e-6 at 1e5); WGSL's own sin/cos
 * promise nothing outside [-π, π]. ±inf and NaN give NaN.
 */
export const SINCOS_WGSL = `${SINCOS_CORE_WGSL}
fn reduce_half_pi(x: f32) -> vec2<f32> {
  let k = round(x * 0.63661975);
  let r = ((x - k * 1.5703125) - k * 4.8375129699707031e-4) - k * 7.5497899548918821e-8;
  return vec2<f32>(k, r);
}
fn sin_f32(x: f32) -> f32 {
  let kr = reduce_half_pi(x);
  return sin_quadrant(i32(kr.x), kr.y);
}
fn cos_f32(x: f32) -> f32 {
  let kr = reduce_half_pi(x);
  return sin_quadrant(i32(kr.x) + 1, kr.y);
}
`;

/**
 * sincos_turns(t) = (sin 2πt, cos 2πt) for t in [-1/2, 1/2] on the 2^-24 grid (as random draws are):
 * the reduction to a quarter turn, t - q/4, is exact, so the only rounding before the polynomials is
 * the product by 2π (under 1e-7).
 */
export const SINCOS_TURNS_WGSL = `${SINCOS_CORE_WGSL}
fn sincos_turns(t: f32) -> vec2<f32> {
  let q = round(4.0 * t);
  let r = (t - 0.25 * q) * 6.2831855;
  let k = i32(q);
  return vec2<f32>(sin_quadrant(k, r), sin_quadrant(k + 1, r));
}
`;

/**
 * Natural log for positive normal f32 x: x = 2^e·m with m in [√½, √2) (bit operations, exact),
 * f = m - 1 (exact), ln m = 2·atanh(s) with s = f / (2 + f), |s| < 0.172, summed to s^9 (truncation
 * under 3e-9 relative). e·ln 2 uses ln 2 = 0.693359375 (9 bits: e times it is exact) + a small rest.
 * Relative error ≈ 3e-7 (the division's 2.5 ULP dominates); WGSL's log allows 2^-21 absolute near 1,
 * which is all of ln x for x within 5e-7 of 1. Zero, negative, subnormal and non-finite x: undefined.
 */
export const LOG_WGSL = `
fn log_f32(x: f32) -> f32 {
  let bits = bitcast<u32>(x);
  let big = (bits & 0x007fffffu) > 0x003504f3u; // mantissa above √2
  let e = i32(bits >> 23u) - 127 + select(0, 1, big);
  let m = bitcast<f32>((bits & 0x007fffffu) | select(0x3f800000u, 0x3f000000u, big));
  let f = m - 1.0;
  let s = f / (2.0 + f);
  let z = s * s;
  let p = s * (2.0 + z * (0.6666667 + z * (0.4 + z * (0.2857143 + z * 0.22222222))));
  let fe = f32(e);
  return (fe * -2.1219444e-4 + p) + fe * 0.693359375;
}
`;
