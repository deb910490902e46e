// What the benchmark measures: each case once for vitgpu and once for each peer, on the same inputs
// (drawn by vitgpu's seeded GPU generator and uploaded to the peers), with a CPU reference that every
// implementation's outputs must match before it is timed.
//
// A Runner's run() is one timed call: it records the work and returns once the GPU has finished it
// (vitgpu: device.sync(); tfjs: an awaited one-element read-back; jax-js: blockUntilReady()), and frees
// the outputs (freeing is CPU bookkeeping in all three).

import type { Device, Tensor } from '../engine/node.js';
import { attention, layerNorm, noGrad, tidy } from '../engine/node.js';
import type { Tensor as TfTensor } from '@tensorflow/tfjs-core';
import type { Array as JaxArray } from '@jax-js/jax';
import type { Jax, Tfjs } from './peers.js';
import * as ref from './reference.js';

export interface Runner {
  run(): Promise<void>;
  /** Computes once and reads every output back (for the checks). */
  outputs(): Promise<Float32Array[]>;
  dispose(): void;
  /** How this implementation computes the case (e.g. "fused kernel", "composed ops, jit"). */
  mode: string;
}

export interface InputSpec {
  name: string;
  shape: number[];
  seed: number;
  mean?: number;
  std?: number;
}

export interface HostTensor {
  data: Float32Array;
  shape: number[];
}

export interface CheckResult {
  ok: boolean;
  /** Per output: relative error against the CPU reference. */
  outputs: { name: string; relErr: number; maxAbsErr: number; compared: number }[];
}

/** jax-js can run a case eagerly or through jit (fused, traced once); the harness tries jit first. */
export type JaxMode = 'jit' | 'eager';

export interface Case {
  id: string;
  group: 'matmul' | 'attention' | 'layernorm';
  op: string;
  shape: string;
  /** Floating-point operations of one call (the algorithm's, not counting recomputation). */
  flops: number | null;
  /** Minimum bytes one call must move (for GB/s), when the op is memory-bound. */
  bytes: number | null;
  inputs: InputSpec[];
  outputNames: string[];
  check(inputs: HostTensor[], outputs: Float32Array[]): CheckResult;
  vitgpu(device: Device, inputs: Tensor[]): Runner;
  tfjs(tf: Tfjs, inputs: HostTensor[]): Runner;
  jax(jax: Jax, inputs: HostTensor[], mode: JaxMode): Runner;
}

/** Relative error (against the largest reference magnitude) above which an output is wrong. */
export const TOLERANCE = 1e-3;

// ---- generic runners ----

function vitgpuRunner(device: Device, inputs: Tensor[], mode: string, compute: () => Tensor[], release: (outs: Tensor[]) => void): Runner {
  return {
    mode,
    async run() {
      const outs = tidy(compute);
      await device.sync();
      release(outs);
    },
    async outputs() {
      const outs = tidy(compute);
      const data = await Promise.all(outs.map((t) => t.data()));
      release(outs);
      return data;
    },
    dispose() {
      for (const t of inputs) t.dispose();
    },
  };
}

const disposeAll = (outs: Tensor[]) => outs.forEach((t) => t.dispose());

function tfjsRunner(tf: Tfjs, inputs: TfTensor[], mode: string, compute: () => TfTensor[]): Runner {
  return {
    mode,
    async run() {
      const outs = tf.tidy(compute);
      const last = outs[outs.length - 1];
      // One element read back: waits for the queue without timing a large copy.
      const probe = tf.slice(last, last.shape.map(() => 0), last.shape.map(() => 1));
      await probe.data();
      probe.dispose();
      tf.dispose(outs);
    },
    async outputs() {
      const outs = tf.tidy(compute);
      const data = await Promise.all(outs.map((t) => t.data() as Promise<Float32Array>));
      tf.dispose(outs);
      return data;
    },
    dispose() {
      tf.dispose(inputs);
    },
  };
}

/** `compute` takes ownership of references it is handed (jax-js's convention) and returns new arrays. */
function jaxRunner(inputs: JaxArray[], mode: string, compute: (args: JaxArray[]) => JaxArray[], cleanup = () => {}): Runner {
  const call = () => compute(inputs.map((a) => a.ref));
  return {
    mode,
    async run() {
      const outs = call();
      await Promise.all(outs.map((a) => a.blockUntilReady()));
      for (const a of outs) a.dispose();
    },
    async outputs() {
      const outs = call();
      return Promise.all(outs.map(async (a) => new Float32Array(await a.data())));
    },
    dispose() {
      for (const a of inputs) a.dispose();
      cleanup();
    },
  };
}

const tfInputs = (tf: Tfjs, inputs: HostTensor[]) => inputs.map((h) => tf.tensor(h.data, h.shape, 'float32'));
const jaxInputs = (jax: Jax, inputs: HostTensor[]) => inputs.map((h) => jax.numpy.array(h.data, { shape: h.shape }));

/** Wraps a jax-js function in jit when asked; returns it with its dispose. */
function jaxCompile<F extends (...args: JaxArray[]) => JaxArray[]>(jax: Jax, f: F, mode: JaxMode): { fn: (args: JaxArray[]) => JaxArray[]; dispose(): void } {
  if (mode === 'eager') return { fn: (args) => f(...args), dispose() {} };
  const compiled = jax.jit(f as unknown as (...args: JaxArray[]) => JaxArray[]);
  return { fn: (args) => compiled(...args) as JaxArray[], dispose: () => compiled.dispose() };
}

function checkOutputs(names: string[], outputs: Float32Array[], refs: { ref: ArrayLike<number>; at?: number[] }[]): CheckResult {
  const results = refs.map((r, i) => ({ name: names[i], ...ref.compare(outputs[i], r.ref, r.at) }));
  return { ok: results.every((r) => r.relErr <= TOLERANCE), outputs: results };
}

// ---- matmul ----

function matmulCase(id: string, m: number, k: number, n: number): Case {
  return {
    id,
    group: 'matmul',
    op: 'matmul',
    shape: `${m}x${k}x${n}`,
    flops: 2 * m * k * n,
    bytes: null,
    inputs: [
      { name: 'a', shape: [m, k], seed: 101 },
      { name: 'b', shape: [k, n], seed: 102 },
    ],
    outputNames: ['c'],
    check([a, b], [c]) {
      const at = ref.samplePositions(m * n, 512);
      return checkOutputs(this.outputNames, [c], [{ ref: ref.matmulAt(a.data, b.data, k, n, at), at }]);
    },
    vitgpu(device, [a, b]) {
      return vitgpuRunner(device, [a, b], 'matmul kernel', () => [a.matmul(b)], disposeAll);
    },
    tfjs(tf, host) {
      const [a, b] = tfInputs(tf, host);
      return tfjsRunner(tf, [a, b], 'tf.matMul', () => [tf.matMul(a, b)]);
    },
    jax(jax, host, mode) {
      const np = jax.numpy;
      const f = jaxCompile(jax, (a: JaxArray, b: JaxArray) => [np.matmul(a, b)], mode);
      return jaxRunner(jaxInputs(jax, host), `np.matmul, ${mode}`, f.fn, f.dispose);
    },
  };
}

// ---- attention ----

const ATT = { b: 8, h: 12, n: 197, d: 64 };
const ATT_SHAPE = [ATT.b, ATT.h, ATT.n, ATT.d];
const ATT_SCALE = 1 / Math.sqrt(ATT.d);
/** Heads checked against the CPU reference: the first and the last. */
const ATT_HEADS = [0, ATT.b * ATT.h - 1];

function attentionCase(backward: boolean): Case {
  const { b, h, n, d } = ATT;
  const pairs = b * h * n * n * d;
  const inputs: InputSpec[] = [
    { name: 'q', shape: ATT_SHAPE, seed: 201 },
    { name: 'k', shape: ATT_SHAPE, seed: 202 },
    { name: 'v', shape: ATT_SHAPE, seed: 203 },
  ];
  if (backward) inputs.push({ name: 'dOut', shape: ATT_SHAPE, seed: 204 });
  // tfjs and jax-js: the composed softmax(q·kᵀ/√D)·v, which materializes the B·H·N² scores.
  return {
    id: backward ? 'attention-fwd+bwd' : 'attention-fwd',
    group: 'attention',
    op: backward ? 'attention fwd+bwd' : 'attention fwd',
    shape: `B${b} H${h} N${n} D${d}`,
    // q·kᵀ and p·v forward; dV, dP, dQ, dK backward: 2 FLOPs per multiply-add.
    flops: (backward ? 12 : 4) * pairs,
    bytes: null,
    inputs,
    outputNames: backward ? ['out', 'dq', 'dk', 'dv'] : ['out'],
    check(host, outputs) {
      const [q, k, v, dOut] = host.map((t) => t.data);
      const refs: { ref: number[]; at: number[] }[] = this.outputNames.map(() => ({ ref: [], at: [] }));
      for (const head of ATT_HEADS) {
        const base = head * n * d;
        const r = ref.attentionHead(q, k, v, backward ? dOut : null, base, n, d, ATT_SCALE);
        const per = backward ? [r.out, r.dq!, r.dk!, r.dv!] : [r.out];
        per.forEach((arr, i) => arr.forEach((x, j) => {
          refs[i].ref.push(x);
          refs[i].at.push(base + j);
        }));
      }
      return checkOutputs(this.outputNames, outputs, refs);
    },
    vitgpu(device, tensors) {
      const [q, k, v, dOut] = tensors;
      if (!backward) return vitgpuRunner(device, tensors, 'fused attention kernel', () => [noGrad(() => attention(q, k, v))], disposeAll);
      for (const t of [q, k, v]) t.requireGrad();
      return vitgpuRunner(device, tensors, 'fused attention kernels (forward, backward)', () => {
        const out = attention(q, k, v);
        out.backward(dOut);
        return [out, q.grad!, k.grad!, v.grad!];
      }, ([out]) => {
        out.dispose();
        for (const t of [q, k, v]) t.zeroGrad();
      });
    },
    tfjs(tf, host) {
      const ts = tfInputs(tf, host);
      const [q, k, v, dOut] = ts;
      const composed = (qq: TfTensor, kk: TfTensor, vv: TfTensor) =>
        tf.matMul(tf.softmax(tf.mul(tf.matMul(qq, kk, false, true), ATT_SCALE)), vv);
      if (!backward) return tfjsRunner(tf, ts, 'composed: matMul, softmax, matMul', () => [composed(q, k, v)]);
      const vg = tf.valueAndGrads((qq: TfTensor, kk: TfTensor, vv: TfTensor) => composed(qq, kk, vv));
      return tfjsRunner(tf, ts, 'composed, tf.valueAndGrads', () => {
        const { value, grads } = vg([q, k, v], dOut);
        return [value, ...grads];
      });
    },
    jax(jax, host, mode) {
      const np = jax.numpy;
      const composed = (q: JaxArray, k: JaxArray, v: JaxArray) =>
        np.matmul(jax.nn.softmax(np.matmul(q, np.matrixTranspose(k)).mul(ATT_SCALE), -1), v);
      if (!backward) {
        const f = jaxCompile(jax, (q: JaxArray, k: JaxArray, v: JaxArray) => [composed(q, k, v)], mode);
        return jaxRunner(jaxInputs(jax, host), `composed: matmul, softmax, matmul, ${mode}`, f.fn, f.dispose);
      }
      const f = jaxCompile(jax, (q: JaxArray, k: JaxArray, v: JaxArray, dOut: JaxArray) => {
        const [out, vjpFn] = jax.vjp(composed, [q, k, v]);
        const grads = vjpFn(dOut) as JaxArray[];
        vjpFn.dispose();
        return [out, ...grads];
      }, mode);
      return jaxRunner(jaxInputs(jax, host), `composed, jax.vjp, ${mode}`, f.fn, f.dispose);
    },
  };
}

// ---- layernorm ----

const LN = { rows: 1576, d: 768, eps: 1e-5 };

function layerNormCase(backward: boolean): Case {
  const { rows, d, eps } = LN;
  const inputs: InputSpec[] = [
    { name: 'x', shape: [rows, d], seed: 301 },
    { name: 'gamma', shape: [d], seed: 302, mean: 1, std: 0.1 },
    { name: 'beta', shape: [d], seed: 303, std: 0.1 },
  ];
  if (backward) inputs.push({ name: 'dy', shape: [rows, d], seed: 304 });
  const elems = rows * d;
  return {
    id: backward ? 'layernorm-fwd+bwd' : 'layernorm-fwd',
    group: 'layernorm',
    op: backward ? 'layernorm fwd+bwd' : 'layernorm fwd',
    shape: `${rows}x${d}`,
    flops: null,
    // Forward reads x and writes y; backward reads x and dy and writes dx (γ, β, row statistics and
    // the [D] parameter gradients are negligible).
    bytes: 4 * (backward ? 5 : 2) * elems,
    inputs,
    outputNames: backward ? ['y', 'dx', 'dgamma', 'dbeta'] : ['y'],
    check(host, outputs) {
      const [x, gamma, beta, dy] = host.map((t) => t.data);
      const r = ref.layerNorm(x, gamma, beta, backward ? dy : null, rows, d, eps);
      const per = backward ? [r.y, r.dx!, r.dgamma!, r.dbeta!] : [r.y];
      return checkOutputs(this.outputNames, outputs, per.map((arr) => ({ ref: arr })));
    },
    vitgpu(device, tensors) {
      const [x, gamma, beta, dy] = tensors;
      if (!backward) return vitgpuRunner(device, tensors, 'layerNorm kernel', () => [noGrad(() => layerNorm(x, gamma, beta, eps))], disposeAll);
      for (const t of [x, gamma, beta]) t.requireGrad();
      return vitgpuRunner(device, tensors, 'layerNorm kernels (forward, backward, parameter gradients)', () => {
        const y = layerNorm(x, gamma, beta, eps);
        y.backward(dy);
        return [y, x.grad!, gamma.grad!, beta.grad!];
      }, ([y]) => {
        y.dispose();
        for (const t of [x, gamma, beta]) t.zeroGrad();
      });
    },
    tfjs(tf, host) {
      const ts = tfInputs(tf, host);
      const [x, gamma, beta, dy] = ts;
      const composed = (xx: TfTensor, g: TfTensor, b: TfTensor) => {
        const { mean, variance } = tf.moments(xx, -1, true);
        return tf.add(tf.mul(tf.mul(tf.sub(xx, mean), tf.rsqrt(tf.add(variance, eps))), g), b);
      };
      if (!backward) return tfjsRunner(tf, ts, 'composed: moments, sub, rsqrt, mul, add', () => [composed(x, gamma, beta)]);
      const vg = tf.valueAndGrads((xx: TfTensor, g: TfTensor, b: TfTensor) => composed(xx, g, b));
      return tfjsRunner(tf, ts, 'composed, tf.valueAndGrads', () => {
        const { value, grads } = vg([x, gamma, beta], dy);
        return [value, ...grads];
      });
    },
    jax(jax, host, mode) {
      const np = jax.numpy;
      const composed = (x: JaxArray, g: JaxArray, b: JaxArray) => {
        const mean = x.ref.mean(-1, { keepdims: true });
        const xc = x.sub(mean);
        const variance = np.square(xc.ref).mean(-1, { keepdims: true });
        return xc.div(np.sqrt(variance.add(eps))).mul(g).add(b);
      };
      if (!backward) {
        const f = jaxCompile(jax, (x: JaxArray, g: JaxArray, b: JaxArray) => [composed(x, g, b)], mode);
        return jaxRunner(jaxInputs(jax, host), `composed: mean, square, sqrt, div, ${mode}`, f.fn, f.dispose);
      }
      const f = jaxCompile(jax, (x: JaxArray, g: JaxArray, b: JaxArray, dy: JaxArray) => {
        const [y, vjpFn] = jax.vjp(composed, [x, g, b]);
        const grads = vjpFn(dy) as JaxArray[];
        vjpFn.dispose();
        return [y, ...grads];
      }, mode);
      return jaxRunner(jaxInputs(jax, host), `composed, jax.vjp, ${mode}`, f.fn, f.dispose);
    },
  };
}

export const CASES: readonly Case[] = [
  matmulCase('matmul-512', 512, 512, 512),
  matmulCase('matmul-1024', 1024, 1024, 1024),
  // ViT-B/16 at batch 8 (8 × 197 tokens): the fused q/k/v projection and the MLP's second linear.
  matmulCase('matmul-vitb-qkv', 1576, 768, 2304),
  matmulCase('matmul-vitb-fc2', 1576, 3072, 768),
  attentionCase(false),
  attentionCase(true),
  layerNormCase(false),
  layerNormCase(true),
];

/** The cases selected by --only: group names or case ids. */
export function selectCases(only: string[] | undefined): Case[] {
  if (!only || only.length === 0) return [...CASES];
  const picked = CASES.filter((c) => only.includes(c.group) || only.includes(c.id));
  const unknown = only.filter((o) => !CASES.some((c) => c.group === o || c.id === o));
  if (unknown.length) {
    const known: string[] = [...new Set(CASES.map((c) => c.group as string)), ...CASES.map((c) => c.id)];
    throw new Error(`--only: unknown ${unknown.join(', ')} (one of: ${known.join(', ')})`);
  }
  return picked;
}
