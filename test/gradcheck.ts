// Finite-difference gradient checks: the GPU gradient of an op against central differences of its
// CPU reference, computed in f64.

import { expect } from 'vitest';
import type { Device, Tensor } from '../engine/node.js';
import { expectClose, seededValues } from './helpers.js';

export interface GradCheckInput {
  shape: readonly number[];
  lo?: number;
  hi?: number;
  /** Explicit values (else seeded uniform in [lo, hi)). */
  data?: ArrayLike<number>;
  /** Include in the check (default true); false makes a constant input. */
  grad?: boolean;
}

export interface GradCheckSpec {
  name: string;
  inputs: readonly GradCheckInput[];
  /** The op on the GPU. */
  gpu: (xs: Tensor[]) => Tensor;
  /** The same op on the CPU in f64, returning the output in row-major order. */
  cpu: (xs: Float64Array[]) => ArrayLike<number>;
  /** Finite-difference step (f64, central differences: truncation error O(h²)). */
  h?: number;
  atol?: number;
  rtol?: number;
  seed?: number;
}

/**
 * Checks d/dx Σ op(x)·r for a fixed random r. The GPU computes in f32, so the default tolerance is
 * 1e-5 absolute + 1e-4 relative: f32 rounding of the forward and backward sums, not of the check.
 */
export async function gradCheck(device: Device, spec: GradCheckSpec): Promise<void> {
  const seed = spec.seed ?? 1;
  const values = spec.inputs.map((inp, i) =>
    inp.data ? Float32Array.from(inp.data) : seededValues(inp.shape.reduce((a, b) => a * b, 1), seed + i * 7, inp.lo ?? -1, inp.hi ?? 1),
  );
  const xs = spec.inputs.map((inp, i) => {
    const t = device.tensor(values[i], inp.shape);
    if (inp.grad !== false) t.requireGrad();
    return t;
  });
  const out = spec.gpu(xs);
  const r = seededValues(out.size, seed + 1000, -1, 1);
  const loss = out.mul(device.tensor(r, out.shape)).sum();
  loss.backward();

  const x64 = values.map((v) => Float64Array.from(v));
  const f = (inputs: Float64Array[]) => {
    const y = spec.cpu(inputs);
    if (y.length !== r.length) throw new Error(`${spec.name}: CPU reference gives ${y.length} outputs, GPU ${r.length}`);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i] * r[i];
    return s;
  };
  // The forward itself must agree before gradients mean anything.
  expectClose(await out.data(), spec.cpu(x64), { atol: spec.atol ?? 1e-5, rtol: spec.rtol ?? 1e-4 }, `${spec.name} forward`);

  const h = spec.h ?? 1e-6;
  for (let i = 0; i < xs.length; i++) {
    if (spec.inputs[i].grad === false) continue;
    expect(xs[i].grad, `${spec.name}: input ${i} got no gradient`).not.toBeNull();
    const got = await xs[i].grad!.data();
    const numeric = new Float64Array(x64[i].length);
    for (let j = 0; j < numeric.length; j++) {
      const keep = x64[i][j];
      x64[i][j] = keep + h;
      const up = f(x64);
      x64[i][j] = keep - h;
      const down = f(x64);
      x64[i][j] = keep;
      numeric[j] = (up - down) / (2 * h);
    }
    expectClose(got, numeric, { atol: spec.atol ?? 1e-5, rtol: spec.rtol ?? 1e-4 }, `${spec.name} d/dx${i}`);
  }
  for (const t of xs) {
    t.zeroGrad();
    t.dispose();
  }
}
