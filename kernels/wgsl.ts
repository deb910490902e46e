// WGSL plumbing shared by every kernel family.
//
// Conventions every kernel follows, so the launcher in engine/device.ts can stay generic:
// - entry point `main`;
// - binding 0 is a uniform block of u32 words (read with `pu(i)`, `pf(i)` for f32 bit patterns);
// - bindings 1..n are the storage buffers, in the order the launcher passes them;
// - a 1-D launch covers more than 65535 workgroups by folding into y: use `linearIndex(gid, nwg)`.

import { wgsl as preprocess } from 'wgsl-preprocessor/wgsl-preprocessor.js';

/** Template tag resolving `#if ${cond}` / `#elif` / `#else` / `#endif` blocks (typed here, so the published
 * declarations do not depend on the repository's own types/ folder). */
export const wgsl: (strings: TemplateStringsArray, ...values: unknown[]) => string = preprocess;

export interface Kernel {
  /** Human-readable name used in errors, debug output and benchmarks. */
  readonly name: string;
  /** Final WGSL source; also the pipeline-cache key. */
  readonly source: string;
  /** Number of u32 words in the params block (binding 0). */
  readonly paramWords: number;
}

const kernelCache = new Map<string, Kernel>();

/**
 * Builds (once per key) a kernel from a source generator. `key` must contain every template parameter
 * that changes the source; the generated source itself keys the pipeline cache.
 */
export function defineKernel(key: string, make: () => { name: string; source: string; paramWords: number }): Kernel {
  let k = kernelCache.get(key);
  if (!k) {
    k = make();
    kernelCache.set(key, k);
  }
  return k;
}

/** Uniform block declaration with `words` u32 slots and its accessors. */
export function paramsBlock(words: number): string {
  const vecs = Math.max(1, Math.ceil(words / 4));
  return `
struct Params { v: array<vec4<u32>, ${vecs}> }
@group(0) @binding(0) var<uniform> params: Params;
fn pu(i: u32) -> u32 { return params.v[i >> 2u][i & 3u]; }
fn pf(i: u32) -> f32 { return bitcast<f32>(params.v[i >> 2u][i & 3u]); }
`;
}

/** Linear invocation index for a 1-D launch folded into (x, y) workgroups of size `wg`. */
export function linearIndex(wg: number): string {
  return `fn linearIndex(gid: vec3<u32>, nwg: vec3<u32>) -> u32 { return gid.x + gid.y * nwg.x * ${wg}u; }`;
}

export const MAX_WORKGROUPS_PER_DIM = 65535;

/** Workgroup counts (x, y) for `threads` invocations in groups of `wg`, folding past 65535 into y. */
export function grid1d(threads: number, wg: number): [number, number] {
  const groups = Math.max(1, Math.ceil(threads / wg));
  if (groups <= MAX_WORKGROUPS_PER_DIM) return [groups, 1];
  const y = Math.ceil(groups / MAX_WORKGROUPS_PER_DIM);
  return [Math.ceil(groups / y), y];
}

/**
 * A reduction across the `wg` invocations of a workgroup through workgroup memory (a tree of
 * barriers), as WGSL function `name(lid, v, ...extraParams)`. Every invocation gets the result; call it
 * in uniform control flow.
 */
export function workgroupReduce(name: string, type: string, wg: number, combine: (a: string, b: string) => string, extraParams = ''): string {
  const buf = `${name}Scratch`;
  return `
var<workgroup> ${buf}: array<${type}, ${wg}>;
fn ${name}(lid: u32, v: ${type}${extraParams}) -> ${type} {
  ${buf}[lid] = v;
  workgroupBarrier();
  for (var s = ${wg / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { ${buf}[lid] = ${combine(`${buf}[lid]`, `${buf}[lid + s]`)}; }
    workgroupBarrier();
  }
  let r = ${buf}[0];
  workgroupBarrier();
  return r;
}
`;
}

/**
 * erf(x) for f32 (WGSL has none): Abramowitz & Stegun 7.1.26, |error| < 1.5e-7, enough for the exact
 * GELU at f32 precision.
 */
export const ERF_WGSL = `
fn erf_f32(x: f32) -> f32 {
  let s = sign(x);
  let a = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-a * a);
  return s * y;
}
`;

/** Packs kernel parameters into u32 words (f32 values as their bit patterns). */
export class Params {
  private readonly words: number[] = [];
  private static readonly f32 = new Float32Array(1);
  private static readonly u32 = new Uint32Array(Params.f32.buffer);

  u32(...values: number[]): this {
    for (const v of values) this.words.push(v >>> 0);
    return this;
  }

  f32(...values: number[]): this {
    for (const v of values) {
      Params.f32[0] = v;
      this.words.push(Params.u32[0]);
    }
    return this;
  }

  /** Pads with zeros to exactly `n` words (so a fixed-size array slot is always filled). */
  padTo(n: number): this {
    while (this.words.length < n) this.words.push(0);
    return this;
  }

  get length(): number {
    return this.words.length;
  }

  toArray(): Uint32Array {
    return Uint32Array.from(this.words);
  }
}
