// WGSL generators of the matmul kernels, one source per configuration (kernels/matmul-plan.ts picks
// it): 'subgroup' and 'register' (blockedSource) and 'tiled' (tiledSource), with the epilogue (bias,
// GELU, residual, pre-activation store) fused into the store. Why they look as they do: kernels/matmul.ts.

import { ERF_WGSL, Params, defineKernel, paramsBlock, storage, type Kernel, type StorageSpec } from './wgsl.js';
import { TILE, TILE_WG, WINDOW_VEC4S, windowK, type MatmulKernelConfig, type MatmulOperand } from './matmul-plan.js';

// Params: [M, N, K, aOffset, aBatch, aRow, aCol, bOffset, bBatch, bRow, bCol, biasOffset, residualOffset]
// and, for 'window', [kStart, kCount, col0]: the pass's first k and its count, the tile's first column.
const PARAM_WORDS = 13;
const WINDOW_PARAM_WORDS = 16;

const TILE_K = 16;

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** The storage buffers of configuration `c`: out, a, b (not for 'window'), then bias, residual and pre when used. */
function buffers(c: MatmulKernelConfig, vec4: boolean): StorageSpec {
  // f16 operands: 4 elements in a vec2<u32>, one in half of a u32 (loads cost per 32-bit word on lavapipe).
  const half = c.operands === 'f16';
  const ty = (isVec: boolean) => (isVec ? (half ? 'vec2<u32>' : 'vec4<f32>') : half ? 'u32' : 'f32');
  const spec: StorageSpec = { out: 'read_write', a: ['read', ty(vec4 && c.a !== 'strided')] };
  if (c.variant !== 'window') spec.b = ['read', ty(vec4 && c.b !== 'strided')];
  if (c.bias) spec.bias = 'read';
  if (c.residual) spec.residual = 'read';
  if (c.pre) spec.pre = 'read_write';
  return spec;
}

/**
 * Operand loads, as WGSL expressions of f32 values: `load(c, 'a', i)` reads element i of a scalar
 * layout, `load4(c, 'a', i)` the vec4 at vec4-index i of a vec4 layout. With f16 operands they unpack
 * (WGSL's core unpack2x16float, no `shader-f16` needed); with f32 they are plain indexing.
 */
const load = (c: MatmulKernelConfig, buf: 'a' | 'b', i: string) => (c.operands === 'f16' ? `half1_${buf}(${i})` : `${buf}[${i}]`);
const load4 = (c: MatmulKernelConfig, buf: 'a' | 'b', i: string) => (c.operands === 'f16' ? `half4(${buf}[${i}])` : `${buf}[${i}]`);

function halfLoaders(c: MatmulKernelConfig, vec4: boolean): string {
  if (c.operands !== 'f16') return '';
  const scalar = (buf: 'a' | 'b') => !vec4 || c[buf] === 'strided';
  const used = (c.variant === 'window' ? (['a'] as const) : (['a', 'b'] as const)).filter(scalar);
  return `
fn half4(w: vec2<u32>) -> vec4<f32> { return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)); }
${used.map((buf) => `fn half1_${buf}(i: u32) -> f32 { return unpack2x16float(${buf}[i >> 1u])[i & 1u]; }`).join('\n')}`;
}

/** `finish(idx, col, x)`: the epilogue of one output element. */
function epilogueFn(c: MatmulKernelConfig): string {
  return `${c.gelu ? ERF_WGSL : ''}
fn finish(idx: u32, col: u32, x: f32) {
  var y = x${c.accIn ? ' + out[idx]' : ''};
  ${c.bias ? 'y += bias[pu(11u) + col];' : ''}
  ${c.pre ? 'pre[idx] = y;' : ''}
  ${c.gelu ? 'y = 0.5 * y * (1.0 + erf_f32(y * 0.7071067811865476));' : ''}
  ${c.residual ? 'y += residual[pu(12u) + idx];' : ''}
  out[idx] = y;
}

/** Stores the 4 columns col..col+3 of one output row that exist. */
fn finish4(rowBase: u32, col: u32, N: u32, v: vec4<f32>) {
  for (var c = 0u; c < 4u; c++) {
    if (col + c < N) { finish(rowBase + col + c, col + c, v[c]); }
  }
}`;
}

const OPERAND_PARAMS = `
  let M = pu(0u); let N = pu(1u); let K = pu(2u);
  let batch = wid.z;
  let aBase = pu(3u) + batch * pu(4u); let aRS = pu(5u); let aCS = pu(6u);
  let bBase = pu(7u) + batch * pu(8u); let bRS = pu(9u); let bCS = pu(10u);
  let lastRow = M - 1u; let lastCol = N - 1u; let lastK = max(K, 1u) - 1u;`;

/** 'subgroup' and 'register': one workgroup of `lanes` owns `rows` rows; lanes split the columns. */
function blockedSource(c: MatmulKernelConfig): string {
  const { rows: R, colVecs: J, lanes: S } = c;
  const win = c.variant === 'window';
  const share = c.variant === 'subgroup' || win;
  const W = c.windows ?? 1;
  const KW4 = windowK(S * J) / 4; // blocks of 4 k's per window
  const G = share ? R / S : 0; // A loads per k-block in the shared layouts
  const rowsR = range(R);
  const colsJ = range(J);

  // Loop-invariant operand indices.
  const setup: string[] = [];
  if (c.a === 'k4') {
    setup.push('let aBase4 = aBase / 4u; let aRS4 = aRS / 4u;');
    if (share) for (let g = 0; g < G; g++) setup.push(`let aRow${g} = aBase4 + min(row0 + ${g * S}u + lane, lastRow) * aRS4;`);
    else for (const r of rowsR) setup.push(`let aRow${r} = aBase4 + min(row0 + ${r}u, lastRow) * aRS4;`);
  } else if (c.a === 'm4') {
    setup.push('let lastRow4 = lastRow & ~3u;');
    if (share) {
      setup.push('let aKl = lane % 4u;');
      for (let g = 0; g < G; g++) setup.push(`let aRow${g} = aBase + min(row0 + ${g * S}u + (lane / 4u) * 4u, lastRow4);`);
    } else for (let q = 0; q < R / 4; q++) setup.push(`let aRow${q} = aBase + min(row0 + ${q * 4}u, lastRow4);`);
  } else {
    if (share) for (let g = 0; g < G; g++) setup.push(`let aRow${g} = aBase + min(row0 + ${g * S}u + lane, lastRow) * aRS;`);
    else for (const r of rowsR) setup.push(`let aRow${r} = aBase + min(row0 + ${r}u, lastRow) * aRS;`);
  }
  const colOf = (j: number) => `colBase + ${j * S * 4}u`;
  if (win) {
    // B comes packed from the uniform windows: nothing to set up.
  } else if (c.b === 'n4') {
    setup.push('let bBase4 = bBase / 4u; let bRS4 = bRS / 4u; let lastCol4 = lastCol & ~3u;');
    for (const j of colsJ) setup.push(`let bCol${j} = min(${colOf(j)}, lastCol4) / 4u;`);
  } else if (c.b === 'k4') {
    setup.push('let bBase4 = bBase / 4u; let bCS4 = bCS / 4u;');
    for (const j of colsJ) for (let e = 0; e < 4; e++) setup.push(`let bCol${j}_${e} = bBase4 + min(${colOf(j)} + ${e}u, lastCol) * bCS4;`);
  } else {
    for (const j of colsJ) for (let e = 0; e < 4; e++) setup.push(`let bCol${j}_${e} = bBase + min(${colOf(j)} + ${e}u, lastCol) * bCS;`);
  }

  /** One block of 4 k's starting at k0 (k4 = k0 / 4); `tail` clamps k and zeroes the values past K. */
  const block = (tail: boolean, window = 0): string => {
    const kc = (kk: number) => (tail ? `min(k0 + ${kk}u, lastK)` : `(k0 + ${kk}u)`);
    const zs = (kk: number, v: string) => (tail ? `select(0.0, ${v}, k0 + ${kk}u < K)` : v);
    const zv = (kk: number, v: string) => (tail ? `select(vec4<f32>(), ${v}, k0 + ${kk}u < K)` : v);
    const out: string[] = [];
    // A values: v{r}_{kk}
    const av: string[][] = rowsR.map(() => []);
    if (share) {
      for (let g = 0; g < G; g++) {
        if (c.a === 'k4') out.push(`let ag${g} = ${load4(c, 'a', `aRow${g} + k4`)};`);
        else if (c.a === 'm4') {
          const kA = tail ? 'min(k0 + aKl, lastK)' : '(k0 + aKl)';
          const v = load4(c, 'a', `(aRow${g} + ${kA} * aCS) / 4u`);
          out.push(`let ag${g} = ${tail ? `select(vec4<f32>(), ${v}, k0 + aKl < K)` : v};`);
        } else out.push(`let ag${g} = vec4<f32>(${range(4).map((kk) => zs(kk, load(c, 'a', `aRow${g} + ${kc(kk)} * aCS`))).join(', ')});`);
      }
      for (const r of rowsR) {
        const g = Math.floor(r / S);
        const w = r % S;
        for (let kk = 0; kk < 4; kk++) {
          const src = c.a === 'm4' ? `subgroupBroadcast(ag${g}[${w % 4}], ${Math.floor(w / 4) * 4 + kk}u)` : `subgroupBroadcast(ag${g}[${kk}], ${w}u)`;
          out.push(`let v${r}_${kk} = ${src};`);
          av[r][kk] = `v${r}_${kk}`;
        }
      }
    } else if (c.a === 'k4') {
      for (const r of rowsR) {
        out.push(`let ar${r} = ${load4(c, 'a', `aRow${r} + k4`)};`);
        for (let kk = 0; kk < 4; kk++) av[r][kk] = `ar${r}[${kk}]`;
      }
    } else if (c.a === 'm4') {
      for (let q = 0; q < R / 4; q++) {
        for (let kk = 0; kk < 4; kk++) {
          out.push(`let ar${q}_${kk} = ${zv(kk, load4(c, 'a', `(aRow${q} + ${kc(kk)} * aCS) / 4u`))};`);
          for (let e = 0; e < 4; e++) av[q * 4 + e][kk] = `ar${q}_${kk}[${e}]`;
        }
      }
    } else {
      for (const r of rowsR) {
        for (let kk = 0; kk < 4; kk++) {
          out.push(`let ar${r}_${kk} = ${zs(kk, load(c, 'a', `aRow${r} + ${kc(kk)} * aCS`))};`);
          av[r][kk] = `ar${r}_${kk}`;
        }
      }
    }
    // B values: b{kk}_{j} = vec4 of the 4 columns of group j at k0 + kk
    if (win) {
      // Window `window` holds k in [kStart + window·KW, kStart + (window+1)·KW) as [k][lane] vec4s.
      out.push(`let kl = q * ${4 * S * J}u + lane;`);
      for (const j of colsJ) {
        for (let kk = 0; kk < 4; kk++) {
          const off = kk * S * J + j * S;
          out.push(`let b${kk}_${j} = bw${window}[kl${off ? ` + ${off}u` : ''}];`);
        }
      }
    }
    for (const j of win ? [] : colsJ) {
      if (c.b === 'n4') {
        for (let kk = 0; kk < 4; kk++) out.push(`let b${kk}_${j} = ${zv(kk, load4(c, 'b', `bBase4 + ${kc(kk)} * bRS4 + bCol${j}`))};`);
      } else if (c.b === 'k4') {
        for (let e = 0; e < 4; e++) out.push(`let bt${j}_${e} = ${load4(c, 'b', `bCol${j}_${e} + k4`)};`);
        for (let kk = 0; kk < 4; kk++) out.push(`let b${kk}_${j} = vec4<f32>(bt${j}_0[${kk}], bt${j}_1[${kk}], bt${j}_2[${kk}], bt${j}_3[${kk}]);`);
      } else {
        for (let kk = 0; kk < 4; kk++) {
          out.push(`let b${kk}_${j} = ${zv(kk, `vec4<f32>(${range(4).map((e) => load(c, 'b', `bCol${j}_${e} + ${kc(kk)} * bRS`)).join(', ')})`)};`);
        }
      }
    }
    // One masked accumulator update per block (lavapipe blends every loop-carried write with the
    // execution mask, so summing the 4 products first saves 3 blends per accumulator).
    for (const r of rowsR) {
      for (const j of colsJ) {
        out.push(`acc${r}_${j} += ${range(4).map((kk) => `${av[r][kk]} * b${kk}_${j}`).join(' + ')};`);
      }
    }
    return out.join('\n    ');
  };

  const bufs = storage(buffers(c, true));
  const windowDecls = win ? range(W).map((w) => `@group(0) @binding(${bufs.names.length + 1 + w}) var<uniform> bw${w}: array<vec4<f32>, ${WINDOW_VEC4S}>;`).join('\n') : '';
  // 'window': one copy of the loop per window, as each window is a binding of its own (a branch per
  // block choosing the window cost about a fifth of the kernel's speed: bench/RESULTS.md).
  const loops = win
    ? `let kBase4 = pu(13u) / 4u;
  let nQ = (pu(14u) + 3u) / 4u;
  ${range(W).map((w) => `for (var q = 0u; q < min(nQ, ${(w + 1) * KW4}u) - min(nQ, ${w * KW4}u); q++) {
    let k4 = kBase4 + ${w * KW4}u + q;
    let k0 = k4 * 4u;
    ${block(c.kTail, w)}
  }`).join('\n  ')}`
    : `let K4 = ${c.kTail ? '(K + 3u) / 4u' : 'K / 4u'};
  for (var k4 = 0u; k4 < K4; k4++) {
    let k0 = k4 * 4u;
    ${block(c.kTail)}
  }`;
  return `${share ? 'enable subgroups;\n' : ''}// matmul '${c.variant}': ${R} rows × ${J * 4 * S} cols per workgroup of ${S}, A ${c.a}, B ${win ? `in ${W} uniform windows` : c.b}
${paramsBlock(win ? WINDOW_PARAM_WORDS : PARAM_WORDS)}
${bufs.wgsl}
${windowDecls}
${halfLoaders(c, true)}
${epilogueFn(c)}

@compute @workgroup_size(${S})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32${share ? ', @builtin(subgroup_invocation_id) sl: u32' : ''}) {
  ${OPERAND_PARAMS}
  let lane = ${share ? 'sl' : 'li'};
  let row0 = wid.y * ${R}u;
  let colBase = ${win ? 'pu(15u) + lane * 4u' : `(wid.x * ${J * S}u + lane) * 4u`};
  ${setup.join('\n  ')}
  ${rowsR.flatMap((r) => colsJ.map((j) => `var acc${r}_${j} = vec4<f32>();`)).join('\n  ')}
  // With K % 4 != 0 every block clamps k and zeroes the values past K (cheaper to compile than a
  // separate copy of the block for the tail, and the loads dominate the run time anyway).
  ${loops}
  // Epilogue through a local array, so the store code is one loop rather than ${R * J} unrolled copies.
  var tile: array<vec4<f32>, ${R * J}>;
  ${rowsR.flatMap((r) => colsJ.map((j) => `tile[${r * J + j}] = acc${r}_${j};`)).join('\n  ')}
  // A trip count only known at run time keeps the compiler from unrolling this loop back.
  let tEnd = min(${R}u, M - row0) * ${J}u;
  for (var t = 0u; t < tEnd; t++) {
    finish4((batch * M + row0 + t / ${J}u) * N, colBase + (t % ${J}u) * ${S * 4}u, N, tile[t]);
  }
}
`;
}

/** 'tiled': 64×64 output tiles staged through workgroup memory, 16×16 invocations of 4×4 outputs. */
function tiledSource(c: MatmulKernelConfig): string {
  const T = TILE;
  const BK = TILE_K;
  const W = TILE_WG;
  const per = (T * BK) / (W * W);
  // Fill order: consecutive invocations read consecutive addresses of a contiguous operand.
  const aFill = c.a === 'k4' ? `let kk = e % ${BK}u; let m = e / ${BK}u;` : `let m = e % ${T}u; let kk = e / ${T}u;`;
  const bFill = c.b === 'k4' ? `let kk = e % ${BK}u; let n = e / ${BK}u;` : `let n = e % ${T}u; let kk = e / ${T}u;`;
  return `// matmul 'tiled': ${T}×${T} tiles, k-steps of ${BK}, ${W}×${W} invocations of 4×4 outputs
${paramsBlock(PARAM_WORDS)}
${storage(buffers(c, false)).wgsl}
${halfLoaders(c, false)}
${epilogueFn(c)}

// [k][m / 4] and [k][n / 4]: one vec4 read gives an invocation its 4 rows (columns) at one k.
var<workgroup> tileA: array<vec4<f32>, ${(T * BK) / 4}>;
var<workgroup> tileB: array<vec4<f32>, ${(T * BK) / 4}>;

@compute @workgroup_size(${W}, ${W})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  ${OPERAND_PARAMS}
  let row0 = wid.y * ${T}u;
  let col0 = wid.x * ${T}u;
  var acc0 = vec4<f32>(); var acc1 = vec4<f32>(); var acc2 = vec4<f32>(); var acc3 = vec4<f32>();
  for (var kt = 0u; kt < K; kt += ${BK}u) {
    for (var i = 0u; i < ${per}u; i++) {
      let e = li + i * ${W * W}u;
      {
        ${aFill}
        let gr = row0 + m; let gk = kt + kk;
        var v = 0.0;
        if (gr < M && gk < K) { v = ${load(c, 'a', 'aBase + gr * aRS + gk * aCS')}; }
        tileA[kk * ${T / 4}u + m / 4u][m % 4u] = v;
      }
      {
        ${bFill}
        let gc = col0 + n; let gk = kt + kk;
        var v = 0.0;
        if (gc < N && gk < K) { v = ${load(c, 'b', 'bBase + gk * bRS + gc * bCS')}; }
        tileB[kk * ${T / 4}u + n / 4u][n % 4u] = v;
      }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${BK}u; kk++) {
      let av = tileA[kk * ${T / 4}u + lid.y];
      let bv = tileB[kk * ${T / 4}u + lid.x];
      acc0 += av.x * bv; acc1 += av.y * bv; acc2 += av.z * bv; acc3 += av.w * bv;
    }
    workgroupBarrier();
  }
  let col = col0 + lid.x * 4u;
  let r = row0 + lid.y * 4u;
  if (r < M) { finish4((batch * M + r) * N, col, N, acc0); }
  if (r + 1u < M) { finish4((batch * M + r + 1u) * N, col, N, acc1); }
  if (r + 2u < M) { finish4((batch * M + r + 2u) * N, col, N, acc2); }
  if (r + 3u < M) { finish4((batch * M + r + 3u) * N, col, N, acc3); }
}
`;
}

export function matmulKernelKey(c: MatmulKernelConfig): string {
  const flags = `${c.bias ? 'b' : ''}${c.gelu ? 'g' : ''}${c.residual ? 'r' : ''}${c.pre ? 'p' : ''}`;
  // 'window' reads B packed, whatever its layout: the layout is the pack kernel's business.
  const bPart = c.variant === 'window' ? `w${c.windows ?? 1}${c.accIn ? '+' : ''}` : `b-${c.b}`;
  return `matmul:${c.variant}:${c.rows}x${c.colVecs}x${c.lanes}:a-${c.a}:${bPart}:${c.kTail ? 'tail' : 'k4'}:${flags}${c.operands === 'f16' ? ':f16' : ''}`;
}

export function matmulKernel(c: MatmulKernelConfig): Kernel {
  return defineKernel(matmulKernelKey(c), () => {
    const names = storage(buffers(c, c.variant !== 'tiled')).names;
    const windows = c.variant === 'window' ? range(c.windows ?? 1).map((w) => `bw${w}`) : [];
    return {
      name: matmulKernelKey(c),
      source: c.variant === 'tiled' ? tiledSource(c) : blockedSource(c),
      paramWords: c.variant === 'window' ? WINDOW_PARAM_WORDS : PARAM_WORDS,
      bindings: [...names, ...windows],
      halfBindings: c.operands === 'f16' ? ['a', 'b'] : undefined,
    };
  });
}

export function matmulParams(
  m: number,
  n: number,
  k: number,
  a: MatmulOperand,
  b: MatmulOperand,
  biasOffset = 0,
  residualOffset = 0,
  window?: { kStart: number; kCount: number; col0: number },
): Uint32Array {
  const p = new Params()
    .u32(m, n, k)
    .u32(a.offset, a.batchStride, a.rowStride, a.colStride)
    .u32(b.offset, b.batchStride, b.rowStride, b.colStride)
    .u32(biasOffset, residualOffset);
  if (window) p.u32(window.kStart, window.kCount, window.col0);
  return p.toArray();
}

/** Workgroups of one dispatch ('window': of one column tile and pass). */
export function matmulWorkgroups(c: MatmulKernelConfig, m: number, n: number, batch: number): [number, number, number] {
  if (c.variant === 'tiled') return [Math.ceil(n / TILE), Math.ceil(m / TILE), batch];
  if (c.variant === 'window') return [1, Math.ceil(m / c.rows), batch];
  return [Math.ceil(n / (4 * c.colVecs * c.lanes)), Math.ceil(m / c.rows), batch];
}

// ---- 'window': B packed into uniform windows ----

/** How B [K, N] is packed for 'window' with tiles of `tileVec4s` vec4s (lanes × column vec4s), k padded to whole windows. */
export function windowPacking(k: number, n: number, tileVec4s: number): { tileCols: number; tiles: number; kPadded: number; windowK: number; floats: number } {
  const tileCols = 4 * tileVec4s;
  const wk = windowK(tileVec4s);
  const kPadded = Math.max(1, Math.ceil(k / wk)) * wk;
  const tiles = Math.ceil(n / tileCols);
  return { tileCols, tiles, kPadded, windowK: wk, floats: tiles * kPadded * tileCols };
}

// A (PACK_X × PACK_Y) workgroup per block of vec4 columns × k's of one tile: the indices come from
// the invocation ids (an integer division per lane is a scalar loop of divides on lavapipe).
const PACK_X = 8;
const PACK_Y = 8;
/** kPadded must be a multiple of this for the 'k4' pack mode (4 k's per invocation, PACK_Y per workgroup). */
export const PACK_K4_BLOCK = 4 * PACK_Y;
// Params: [K, N, bOffset, bRow, bCol, kPadded, vec4s per k (tile columns / 4)]
const PACK_PARAM_WORDS = 7;

/**
 * How the pack reads B: `strided` one f32 at a time, any strides (and f16); `n4` a vec4 of 4 columns at
 * a k (columns contiguous: B [K, N] row-major, as dX = dY·W and dW = dYᵀ·X read it); `k4` 4 vec4s of
 * 4 k's each, one per column, transposed in registers (k contiguous: B = Wᵀ, as x·Wᵀ reads it), so an
 * invocation writes 4 k's of its column vec4. On lavapipe a vec4 load costs about what a scalar one
 * does, so the vec4 modes need a quarter of the loads.
 */
export type PackMode = 'strided' | 'n4' | 'k4';

/** The pack's read mode for B [k, n] (f32) at this layout: the vec4 modes need vec4-aligned rows or columns. */
export function packMode(k: number, n: number, b: MatmulOperand, half: boolean): PackMode {
  if (half || b.offset % 4 !== 0 || k < 4 || n < 4) return 'strided';
  if (b.colStride === 1 && n % 4 === 0 && b.rowStride % 4 === 0) return 'n4';
  if (b.rowStride === 1 && k % 4 === 0 && b.colStride % 4 === 0) return 'k4';
  return 'strided';
}

/**
 * packed[t][k][c] = B[k, t·T + c] for t < tiles, k < kPadded, c < T (zero past K or N), as vec4s over c:
 * the layout the 'window' kernel reads, one 64 KiB window per windowK values of k of a tile.
 */
export function matmulPackKernel(half: boolean, mode: PackMode = 'strided'): Kernel {
  if (half && mode !== 'strided') throw new Error(`matmul_pack_b: f16 operands are packed in the strided mode only, not ${mode}`);
  const key = `matmul_pack_b${half ? ':f16' : ''}${mode === 'strided' ? '' : `:${mode}`}`;
  const name = `matmul_pack_b${half ? ':f16' : ''}${mode === 'strided' ? '' : `_${mode}`}`;
  const bType = half ? 'u32' : mode === 'strided' ? 'f32' : 'vec4<f32>';
  const head = `let per = pu(6u);
  let c4 = gid.x; let t = gid.z;
  if (c4 >= per) { return; }
  let n = (t * per + c4) * 4u;
  let K = pu(0u); let N = pu(1u);`;
  const bodies: Record<PackMode, string> = {
    strided: `let k = gid.y;
  out[(t * pu(5u) + k) * per + c4] = vec4<f32>(ld(k, n), ld(k, n + 1u), ld(k, n + 2u), ld(k, n + 3u));`,
    // N % 4 = 0: the 4 columns are all in or all out.
    n4: `let k = gid.y;
  let v = b[(pu(2u) + min(k, K - 1u) * pu(3u) + min(n, N - 4u)) >> 2u];
  out[(t * pu(5u) + k) * per + c4] = select(vec4<f32>(0.0), v, k < K && n < N);`,
    // K % 4 = 0: the 4 k's are all in or all out; column j of the 4 is B[k0.., n + j].
    k4: `let k0 = gid.y * 4u;
  let kIn = k0 < K;
  var col: array<vec4<f32>, 4>;
  for (var j = 0u; j < 4u; j++) {
    let v = b[(pu(2u) + min(n + j, N - 1u) * pu(4u) + min(k0, K - 4u)) >> 2u];
    col[j] = select(vec4<f32>(0.0), v, kIn && n + j < N);
  }
  let base = (t * pu(5u) + k0) * per + c4;
  out[base] = vec4<f32>(col[0].x, col[1].x, col[2].x, col[3].x);
  out[base + per] = vec4<f32>(col[0].y, col[1].y, col[2].y, col[3].y);
  out[base + 2u * per] = vec4<f32>(col[0].z, col[1].z, col[2].z, col[3].z);
  out[base + 3u * per] = vec4<f32>(col[0].w, col[1].w, col[2].w, col[3].w);`,
  };
  return defineKernel(key, () => ({
    name,
    paramWords: PACK_PARAM_WORDS,
    bindings: ['out', 'b'],
    halfBindings: half ? ['b'] : undefined,
    source: `// B [K, N] (${mode === 'strided' ? 'any strides' : mode === 'n4' ? 'columns contiguous, read as vec4s' : 'k contiguous, read as vec4s of 4 k\'s'}) packed into column tiles for the 'window' matmul
${paramsBlock(PACK_PARAM_WORDS)}
${storage({ out: ['read_write', 'vec4<f32>'], b: ['read', bType] }).wgsl}
${mode === 'strided' ? `fn ld(k: u32, n: u32) -> f32 {
  let K = pu(0u); let N = pu(1u);
  let i = pu(2u) + min(k, K - 1u) * pu(3u) + min(n, N - 1u) * pu(4u);
  let v = ${half ? 'unpack2x16float(b[i >> 1u])[i & 1u]' : 'b[i]'};
  return select(0.0, v, k < K && n < N);
}` : ''}
@compute @workgroup_size(${PACK_X}, ${PACK_Y})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${head}
  ${bodies[mode]}
}
`,
  }));
}

export function matmulPackParams(k: number, n: number, b: MatmulOperand, tileVec4s: number, mode: PackMode = 'strided'): { params: Uint32Array; workgroups: [number, number, number] } {
  const p = windowPacking(k, n, tileVec4s);
  return {
    params: new Params().u32(k, n, b.offset, b.rowStride, b.colStride, p.kPadded, p.tileCols / 4).toArray(),
    // kPadded is a whole number of windows, a multiple of 4·PACK_Y.
    workgroups: [Math.ceil(p.tileCols / 4 / PACK_X), p.kPadded / (mode === 'k4' ? 4 : 1) / PACK_Y, p.tiles],
  };
}
