// Batched matrix multiply C[b] = A[b] · B[b] over strided operands, so a transposed or broadcast
// operand needs no copy. Each invocation computes a 4×4 block of C held in registers; on lavapipe
// (a CPU) register blocking without workgroup memory is what pays, as the CPU caches do the tiling.

import { Params, defineKernel, paramsBlock, type Kernel } from './wgsl.js';

const TILE = 4;
const WG_X = 8;
const WG_Y = 8;

// Params: [M, N, K, batch, aOffset, aBatch, aRow, aCol, bOffset, bBatch, bRow, bCol]
const PARAM_WORDS = 12;

export interface MatmulOperand {
  offset: number;
  batchStride: number;
  rowStride: number;
  colStride: number;
}

export function matmulKernel(): Kernel {
  return defineKernel('matmul:strided4x4', () => {
    const source = `// matmul, 4x4 register blocks, strided operands
${paramsBlock(PARAM_WORDS)}
@group(0) @binding(1) var<storage, read_write> c: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;

@compute @workgroup_size(${WG_X}, ${WG_Y})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let M = pu(0u); let N = pu(1u); let K = pu(2u);
  let batch = gid.z;
  let row0 = gid.y * ${TILE}u;
  let col0 = gid.x * ${TILE}u;
  if (row0 >= M || col0 >= N) { return; }
  let aBase = pu(4u) + batch * pu(5u); let aRow = pu(6u); let aCol = pu(7u);
  let bBase = pu(8u) + batch * pu(9u); let bRow = pu(10u); let bCol = pu(11u);
  // Clamp out-of-range rows/cols to the last valid one; their results are never stored.
  var ar: array<u32, ${TILE}>;
  var bc: array<u32, ${TILE}>;
  for (var i = 0u; i < ${TILE}u; i++) {
    ar[i] = aBase + min(row0 + i, M - 1u) * aRow;
    bc[i] = bBase + min(col0 + i, N - 1u) * bCol;
  }
  var acc: array<vec4<f32>, ${TILE}>;
  for (var k = 0u; k < K; k++) {
    let bv = vec4<f32>(b[bc[0] + k * bRow], b[bc[1] + k * bRow], b[bc[2] + k * bRow], b[bc[3] + k * bRow]);
    for (var i = 0u; i < ${TILE}u; i++) {
      acc[i] += a[ar[i] + k * aCol] * bv;
    }
  }
  let cBase = batch * M * N;
  for (var i = 0u; i < ${TILE}u; i++) {
    let row = row0 + i;
    if (row >= M) { break; }
    for (var j = 0u; j < ${TILE}u; j++) {
      if (col0 + j < N) { c[cBase + row * N + col0 + j] = acc[i][j]; }
    }
  }
}
`;
    return { name: 'matmul', source, paramWords: PARAM_WORDS };
  });
}

export function matmulParams(m: number, n: number, k: number, batch: number, a: MatmulOperand, b: MatmulOperand): Uint32Array {
  return new Params()
    .u32(m, n, k, batch)
    .u32(a.offset, a.batchStride, a.rowStride, a.colStride)
    .u32(b.offset, b.batchStride, b.rowStride, b.colStride)
    .toArray();
}

export function matmulWorkgroups(m: number, n: number, batch: number): [number, number, number] {
  return [Math.ceil(n / (TILE * WG_X)), Math.ceil(m / (TILE * WG_Y)), batch];
}

/** CPU reference in f64: A [batch, M, K] · B [batch, K, N], both contiguous. */
export function matmulCpu(a: ArrayLike<number>, b: ArrayLike<number>, batch: number, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(batch * m * n);
  for (let t = 0; t < batch; t++) {
    for (let i = 0; i < m; i++) {
      for (let p = 0; p < k; p++) {
        const av = a[t * m * k + i * k + p];
        for (let j = 0; j < n; j++) c[t * m * n + i * n + j] += av * b[t * k * n + p * n + j];
      }
    }
  }
  return c;
}
