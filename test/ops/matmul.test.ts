// matmul and linear (engine/ops/matmul.ts): NumPy semantics of the op (1-D operands, broadcast batch axes,
// transposed views) against the CPU reference, and their gradient checks. The kernel variants are
// checked in test/kernels/matmul.test.ts.

import { beforeAll, describe, expect, it } from 'vitest';
import { matmulCpu } from '../../kernels/matmul.js';
import { type Device } from '../../engine/node.js';
import { broadcastCpu, expectClose, getDevice, permuteCpu, seededValues } from '../helpers.js';
import { gradCheck } from '../gradcheck.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

// f32 dot products of length K with inputs in [-1, 1]: error grows ~sqrt(K)·eps.
const tol = (k: number) => ({ atol: 1e-6 * Math.sqrt(k) * 4, rtol: 1e-5 });

describe('matmul', () => {
  it.each([
    [1, 1, 1],
    [3, 5, 7],
    [65, 97, 43],
    [197, 64, 197],
    [33, 257, 130],
  ])('[%i, %i] · [%i, …] matches the CPU reference', async (m, k, n) => {
    const a = seededValues(m * k, 1);
    const b = seededValues(k * n, 2);
    const c = device.tensor(a, [m, k]).matmul(device.tensor(b, [k, n]));
    expect(c.shape).toEqual([m, n]);
    expectClose(await c.data(), matmulCpu(a, b, 1, m, k, n), tol(k));
  });

  it('reads transposed operands in place', async () => {
    const [m, k, n] = [37, 29, 19];
    const at = seededValues(k * m, 3); // stored [k, m]
    const bt = seededValues(n * k, 4); // stored [n, k]
    const A = device.tensor(at, [k, m]).transpose();
    const B = device.tensor(bt, [n, k]).transpose();
    const c = A.matmul(B);
    const ref = matmulCpu(permuteCpu(at, [k, m], [1, 0]), permuteCpu(bt, [n, k], [1, 0]), 1, m, k, n);
    expectClose(await c.data(), ref, tol(k));
  });

  it('batched, with broadcast batch axes', async () => {
    const [m, k, n] = [11, 13, 9];
    const a = seededValues(2 * 3 * m * k, 5);
    const b = seededValues(3 * k * n, 6);
    const c = device.tensor(a, [2, 3, m, k]).matmul(device.tensor(b, [3, k, n]));
    expect(c.shape).toEqual([2, 3, m, n]);
    const bb = broadcastCpu(b, [3, k, n], [2, 3, k, n]);
    expectClose(await c.data(), matmulCpu(a, bb, 6, m, k, n), tol(k));
  });

  it('batch axes that do not flatten to one stride are materialized correctly', async () => {
    const [m, k, n] = [4, 6, 5];
    const a = seededValues(2 * 1 * m * k, 7);
    const b = seededValues(1 * 3 * k * n, 8);
    const c = device.tensor(a, [2, 1, m, k]).matmul(device.tensor(b, [1, 3, k, n]));
    expect(c.shape).toEqual([2, 3, m, n]);
    const ab = broadcastCpu(a, [2, 1, m, k], [2, 3, m, k]);
    const bb = broadcastCpu(b, [1, 3, k, n], [2, 3, k, n]);
    expectClose(await c.data(), matmulCpu(ab, bb, 6, m, k, n), tol(k));
  });

  it('1-D operands follow NumPy', async () => {
    const A = device.tensor([[1, 2], [3, 4], [5, 6]]);
    const v = device.tensor([1, -1]);
    const r = A.matmul(v);
    expect(r.shape).toEqual([3]);
    expect(Array.from(await r.data())).toEqual([-1, -1, -1]);
    const l = device.tensor([1, 0, 2]).matmul(A);
    expect(l.shape).toEqual([2]);
    expect(Array.from(await l.data())).toEqual([11, 14]);
    expect(await device.tensor([1, 2, 3]).matmul(device.tensor([4, 5, 6])).item()).toBe(32);
  });

  it('rejects mismatched inner dimensions', () => {
    expect(() => device.zeros([3, 4]).matmul(device.zeros([5, 2]))).toThrow(/inner dimensions differ: \[3, 4\] · \[5, 2\]/);
  });
});

describe('gradient checks: matmul and linear', () => {
  const mm = (a: Float64Array, b: Float64Array, batch: number, m: number, k: number, n: number) => {
    const c = new Float64Array(batch * m * n);
    for (let t = 0; t < batch; t++) for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) c[t * m * n + i * n + j] += a[t * m * k + i * k + p] * b[t * k * n + p * n + j];
    return c;
  };

  it('2-D', async () => {
    await gradCheck(device, { name: 'matmul', inputs: [{ shape: [3, 5] }, { shape: [5, 4] }], gpu: ([a, b]) => a.matmul(b), cpu: ([a, b]) => mm(a, b, 1, 3, 5, 4) });
  });

  it('transposed operands and broadcast batch', async () => {
    await gradCheck(device, {
      name: 'matmul-batched',
      inputs: [{ shape: [2, 5, 3] }, { shape: [4, 5] }],
      gpu: ([a, b]) => a.transpose().matmul(b.transpose()), // [2, 3, 5] · [5, 4]
      cpu: ([a, b]) => {
        const at = new Float64Array(30);
        for (let t = 0; t < 2; t++) for (let i = 0; i < 3; i++) for (let p = 0; p < 5; p++) at[t * 15 + i * 5 + p] = a[t * 15 + p * 3 + i];
        const bt = new Float64Array(20);
        for (let p = 0; p < 5; p++) for (let j = 0; j < 4; j++) bt[p * 4 + j] = b[j * 5 + p];
        return mm(at, Float64Array.from([...bt, ...bt]), 2, 3, 5, 4);
      },
    });
  });

  it('1-D operands', async () => {
    await gradCheck(device, { name: 'matvec', inputs: [{ shape: [3, 4] }, { shape: [4] }], gpu: ([a, v]) => a.matmul(v), cpu: ([a, v]) => mm(a, v, 1, 3, 4, 1) });
  });

  it('linear with bias, GELU and residual', async () => {
    const { linear } = await import('../../engine/node.js');
    const { elementwiseCpu } = await import('../../kernels/elementwise.js');
    await gradCheck(device, {
      name: 'linear',
      inputs: [{ shape: [2, 3, 4] }, { shape: [5, 4] }, { shape: [5] }, { shape: [2, 3, 5] }],
      gpu: ([x, w, b, r]) => linear(x, w, b, { gelu: true, residual: r }),
      cpu: ([x, w, b, r]) => {
        const wt = new Float64Array(20);
        for (let o = 0; o < 5; o++) for (let i = 0; i < 4; i++) wt[i * 5 + o] = w[o * 4 + i];
        const y = mm(x, Float64Array.from([...wt, ...wt]), 2, 3, 4, 5).map((v, i) => v + b[i % 5]);
        return elementwiseCpu('gelu', [y]).map((v, i) => v + r[i]);
      },
    });
  });
});
