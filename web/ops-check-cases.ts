// The fixed set of engine computations that the browser check (web/ops-check.ts, run in Chromium) and
// the Node side of test/browser/browser.test.ts both run, on inputs built here from closed formulas.
// Both sides import this one module, so the inputs and the ops applied to them are the same code.
// Browser-safe: imports nothing but the engine's browser entry (and only its types).

import type { Device, Tensor } from '../engine/index.js';

/** How a case's two results are compared (see test/browser/browser.test.ts). */
export type CaseKind = 'elementwise' | 'reduce' | 'matmul' | 'randn' | 'rand';

export interface OpsCase {
  name: string;
  kind: CaseKind;
  /** Shape of the result (its values are returned flattened, row-major). */
  shape: number[];
}

/** A deterministic Float32Array of `n` values, `f(i)` rounded to f32. */
export function filled(n: number, f: (i: number) => number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = f(i);
  return out;
}

const N = 1000;

/** The inputs, by name: every value comes from these formulas and nothing else. */
export function makeInputs() {
  return {
    // Elementwise operands: x in [-3, 3], y in [-1.5, 2.5], d in [0.5, 2.5] (safe divisor).
    x: filled(N, (i) => Math.sin(i * 0.37) * 3),
    y: filled(N, (i) => Math.cos(i * 0.11) * 2 + 0.5),
    d: filled(N, (i) => 1.5 + Math.sin(i * 0.23 + 1)),
    // Broadcast add: [7, 1, 5] + [3, 5] -> [7, 3, 5].
    bcA: filled(7 * 1 * 5, (i) => Math.sin(i * 0.5) * 2),
    bcB: filled(3 * 5, (i) => Math.cos(i * 0.9) - 0.25),
    // Reductions over a [33, 257] tensor.
    red: filled(33 * 257, (i) => Math.sin(i * 0.013) + Math.cos(i * 0.7) * 0.5),
    // Matmul [65, 97] x [97, 43].
    mmA: filled(65 * 97, (i) => Math.sin(i * 0.017) * 0.8),
    mmB: filled(97 * 43, (i) => Math.cos(i * 0.029) * 0.6 - 0.1),
    // Batched, transposed: [3, 20, 31]^T . [3, 20, 17] -> [3, 31, 17], and [3, 20, 31]^T . ([3, 17, 20]^T) -> [3, 31, 17].
    bmA: filled(3 * 20 * 31, (i) => Math.sin(i * 0.041) - 0.2),
    bmB: filled(3 * 20 * 17, (i) => Math.cos(i * 0.053) * 0.9),
    bmC: filled(3 * 17 * 20, (i) => Math.sin(i * 0.071 + 0.3) * 1.1),
  };
}

export const RANDOM_SEED = 7;

/** The cases, in the order they are computed; `computeOpsCases` returns one entry per name. */
export const OPS_CASES: readonly OpsCase[] = [
  { name: 'add', kind: 'elementwise', shape: [N] },
  { name: 'mul', kind: 'elementwise', shape: [N] },
  { name: 'div', kind: 'elementwise', shape: [N] },
  { name: 'exp', kind: 'elementwise', shape: [N] },
  { name: 'tanh', kind: 'elementwise', shape: [N] },
  { name: 'gelu', kind: 'elementwise', shape: [N] },
  { name: 'sigmoid', kind: 'elementwise', shape: [N] },
  { name: 'broadcastAdd', kind: 'elementwise', shape: [7, 3, 5] },
  { name: 'sumAxis1', kind: 'reduce', shape: [33] },
  { name: 'maxAxis0', kind: 'reduce', shape: [257] },
  { name: 'meanAll', kind: 'reduce', shape: [] },
  { name: 'matmul', kind: 'matmul', shape: [65, 43] },
  { name: 'batchedTransposedA', kind: 'matmul', shape: [3, 31, 17] },
  { name: 'batchedTransposedAB', kind: 'matmul', shape: [3, 31, 17] },
  { name: 'randn', kind: 'randn', shape: [N] },
  { name: 'rand', kind: 'rand', shape: [N] },
];

/** Runs every case on `device` and reads the results back (as plain arrays, to cross a page boundary). */
export async function computeOpsCases(device: Device): Promise<Record<string, number[]>> {
  const inp = makeInputs();
  const made: Tensor[] = [];
  const t = <T extends Tensor>(v: T): T => (made.push(v), v);
  try {
    const x = t(device.tensor(inp.x, [N]));
    const y = t(device.tensor(inp.y, [N]));
    const d = t(device.tensor(inp.d, [N]));
    const red = t(device.tensor(inp.red, [33, 257]));
    const bmA = t(device.tensor(inp.bmA, [3, 20, 31]));
    const bmAT = t(bmA.transpose());
    const bmC = t(device.tensor(inp.bmC, [3, 17, 20]));
    const out: Record<string, Tensor> = {
      add: t(x.add(y)),
      mul: t(x.mul(y)),
      div: t(x.div(d)),
      exp: t(x.exp()),
      tanh: t(x.tanh()),
      gelu: t(x.gelu()),
      sigmoid: t(x.sigmoid()),
      broadcastAdd: t(t(device.tensor(inp.bcA, [7, 1, 5])).add(t(device.tensor(inp.bcB, [3, 5])))),
      sumAxis1: t(red.sum(1)),
      maxAxis0: t(red.max(0)),
      meanAll: t(red.mean()),
      matmul: t(t(device.tensor(inp.mmA, [65, 97])).matmul(t(device.tensor(inp.mmB, [97, 43])))),
      batchedTransposedA: t(bmAT.matmul(t(device.tensor(inp.bmB, [3, 20, 17])))),
      batchedTransposedAB: t(bmAT.matmul(t(bmC.transpose()))),
      randn: t(device.randn([N], { seed: RANDOM_SEED })),
      rand: t(device.rand([N], { seed: RANDOM_SEED })),
    };
    const results: Record<string, number[]> = {};
    for (const c of OPS_CASES) {
      const r = out[c.name];
      if (!r) throw new Error(`ops-check: case ${c.name} was not computed`);
      const shape = [...r.shape];
      if (shape.length !== c.shape.length || shape.some((s, i) => s !== c.shape[i])) {
        throw new Error(`ops-check: case ${c.name} has shape [${shape}], expected [${c.shape}]`);
      }
      results[c.name] = Array.from(await r.data());
    }
    return results;
  } finally {
    for (const m of made) if (!m.isDisposed) m.dispose();
  }
}
