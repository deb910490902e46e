// Casts between f32 tensors and f16 tensors (stored two per u32 word, element i in the low half of word
// i/2 when i is even), for mixed precision: the matmul reads f16 operands packed, so the casts need no
// `shader-f16`. f32 -> f16 rounds to nearest even in integer arithmetic (WGSL's pack2x16float leaves
// rounding and out-of-range values to the implementation), with overflow to ±inf, so that loss scaling
// sees an overflowing gradient, and gradual underflow to f16 subnormals. f16 -> f32 is exact.
// The CPU references are engine/half.ts's halfBits and halfValue.

import { Tensor } from '../engine/tensor.js';
import { ShapeError } from '../engine/errors.js';
import { shapeStr } from '../engine/shape.js';
import { contiguousInput } from './elementwise.js';
import { Params, defineKernel, grid1d, launch, linearIndex, paramsBlock, storage, type Kernel } from './wgsl.js';

const WG = 256;

/** f32 bits -> f16 bits, round to nearest even; the WGSL twin of engine/half.ts halfBits. */
export const HALF_BITS_WGSL = `
fn halfBits(bits: u32) -> u32 {
  let sign = (bits >> 16u) & 0x8000u;
  let exp = (bits >> 23u) & 0xffu;
  let mant = bits & 0x7fffffu;
  if (exp == 0xffu) { return sign | select(0x7c00u, 0x7e00u, mant != 0u); }
  if (exp == 0u) { return sign; } // f32 zero and subnormals are far below f16's smallest subnormal
  let sig = mant | 0x800000u;
  let e = i32(exp) - 112; // f16's biased exponent before rounding
  var drop = 13u;
  if (e < 1) { drop = u32(14 - e); }
  if (drop > 25u) { return sign; }
  let kept = sig >> drop;
  let rest = sig - (kept << drop);
  let half = 1u << (drop - 1u);
  var r = kept;
  if (rest > half || (rest == half && (kept & 1u) == 1u)) { r += 1u; }
  var v = r;
  if (e >= 1) { v = (u32(e - 1) << 10u) + r; }
  return sign | min(v, 0x7c00u);
}
`;

function toHalfKernel(): Kernel {
  return defineKernel('cast:f32-f16', () => {
    const spec = storage({ out: ['read_write', 'u32'], x: ['read', 'u32'] });
    // Params: [words, size, xOffset]; one invocation per output word (two elements).
    const source = `// cast f32 -> f16 (packed two per u32)
${paramsBlock(3)}
${spec.wgsl}
${linearIndex(WG)}
${HALF_BITS_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let w = linearIndex(gid, nwg);
  if (w >= pu(0u)) { return; }
  let e = 2u * w;
  let lo = halfBits(x[pu(2u) + e]);
  var hi = 0u;
  if (e + 1u < pu(1u)) { hi = halfBits(x[pu(2u) + e + 1u]); }
  out[w] = lo | (hi << 16u);
}
`;
    return { name: 'cast f32->f16', source, paramWords: 3, bindings: spec.names, halfBindings: ['out'] };
  });
}

function toFloatKernel(): Kernel {
  return defineKernel('cast:f16-f32', () => {
    const spec = storage({ out: 'read_write', x: ['read', 'u32'] });
    // Params: [size, xOffset]
    const source = `// cast f16 (packed two per u32) -> f32
${paramsBlock(2)}
${spec.wgsl}
${linearIndex(WG)}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(gid, nwg);
  if (i >= pu(0u)) { return; }
  let e = pu(1u) + i;
  out[i] = unpack2x16float(x[e >> 1u])[e & 1u];
}
`;
    return { name: 'cast f16->f32', source, paramWords: 2, bindings: spec.names, halfBindings: ['x'] };
  });
}

/** A contiguous f16 copy of the f32 tensor `t` (any layout). An f16 tensor is returned as a new view. */
export function castToHalf(t: Tensor): Tensor {
  t.assertAlive('castToHalf');
  if (t.dtype === 'f16') return t.view();
  const out = Tensor.empty(t.device, t.shape, 'f16');
  if (t.size === 0) return out;
  const src = contiguousInput(t, 'any');
  try {
    const words = Math.ceil(t.size / 2);
    launch(toHalfKernel(), { out, x: src }, new Params().u32(words, t.size, src.offset).toArray(), grid1d(words, WG), { bytes: 4 * t.size + 4 * words });
  } finally {
    src.dispose();
  }
  return out;
}

/** A contiguous f32 copy of the contiguous f16 tensor `t`. An f32 tensor is returned as a new view. */
export function castToFloat(t: Tensor): Tensor {
  t.assertAlive('castToFloat');
  if (t.dtype === 'f32') return t.view();
  if (!t.isContiguous) throw new ShapeError(`castToFloat: f16 tensor ${shapeStr(t.shape)} must be contiguous`);
  const out = Tensor.empty(t.device, t.shape);
  if (t.size === 0) return out;
  launch(toFloatKernel(), { out, x: t }, new Params().u32(t.size, t.offset).toArray(), grid1d(t.size, WG), { bytes: 6 * t.size });
  return out;
}
