// The reduction kernels (kernels/reduce.ts) against their CPU reference, through sum/mean/max/min:
// both kernel variants, strided views, long rows (two passes); and every variant compiles.

import { beforeAll, describe, expect, it } from 'vitest';
import { reduceColumnsKernel, reduceCpu, reduceKernel, reduceParams, reduceUsesWorkgroup, reduceWorkgroups, type ReduceOpName } from '../../kernels/reduce.js';
import { TREE_ROW_REDUCE, defaultRowReduce, fixedSubgroupSize, launch, type RowReduce } from '../../kernels/wgsl.js';
import { Tensor } from '../../engine/tensor.js';
import { ShapeError, type Device } from '../../engine/node.js';
import { expectClose, expectCompiles, getDevice, permuteCpu, seededValues } from '../helpers.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

const cases: [readonly number[], number[]][] = [
  [[7], [0]],
  [[33, 257], [1]],
  [[33, 257], [0]],
  [[5, 3, 11], [0, 2]],
  [[5, 3, 11], [1]],
  [[4, 6, 9, 2], [1, 3]],
  [[3, 1000], [1]], // long rows: one workgroup per output
  [[1000, 3], [0]], // long strided rows
  [[2, 9001], [1]], // rows past REDUCE_CHUNK: two passes
  [[9001, 2], [0]],
  [[2, 3, 4, 5, 6], [0, 1, 2, 3, 4]],
  [[9, 9], []],
  // Leading axes reduced, the kept ones contiguous and a multiple of 4: the vec4 column kernel.
  [[300, 36], [0]], // five chunks of rows, then the partials
  [[5, 6, 8], [0, 1]],
  [[40, 4], [0]], // one chunk
  [[5000, 8], [0]], // 79 chunks: three passes
];

describe.each(['sum', 'mean', 'max', 'min'] as const)('%s', (op) => {
  it.each(cases)('over %j axes %j', async (shape, axes) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const x = seededValues(n, 21, -2, 2);
    const t = device.tensor(x, shape);
    const got = t[op](axes, true);
    expect(got.shape).toEqual(shape.map((d, i) => (axes.includes(i) ? 1 : d)));
    let ref = reduceCpu(op === 'mean' ? 'sum' : op, x, shape, axes);
    if (op === 'mean') {
      const r = axes.reduce((a, i) => a * shape[i], 1);
      ref = ref.map((v) => v / r);
    }
    // f32 accumulation over up to 1,000 terms of magnitude <= 2.
    expectClose(await got.data(), ref, { atol: 2e-5, rtol: 1e-5 }, `${op}${JSON.stringify(axes)}`);
  });
});

describe('the vec4 column kernel', () => {
  it('takes leading-axis reductions of vec4-aligned views, and leaves the rest to the other kernels', async () => {
    // x [R, 40]: columns 4..36 are a view at offset 4 with rows 40 apart (vec4 column kernel); columns
    // 2..34 start at offset 2 (the per-workgroup kernel).
    const [R, W] = [150, 40];
    const data = seededValues(R * W, 5, -2, 2);
    const x = device.tensor(data, [R, W]);
    for (const [from, kernel] of [[4, 'reduce_sum_cols4'], [2, 'reduce_sum']] as const) {
      const view = x.slice([0, from], [R, from + 32]);
      const session = device.profile();
      const got = await view.sum([0]).data();
      const names = (await session.stop()).kernels.map((k) => k.name);
      expect(names, `columns from ${from}`).toContain(kernel);
      if (kernel === 'reduce_sum') expect(names).not.toContain('reduce_sum_cols4');
      const ref = Array.from({ length: 32 }, (_, c) => Array.from({ length: R }, (_, r) => data[r * W + from + c]).reduce((a, b) => a + b, 0));
      expectClose(got, ref, { atol: 2e-5, rtol: 1e-5 }, `columns from ${from}`);
      view.dispose();
    }
    x.dispose();
  });
});

describe('reductions', () => {
  it('both kernel variants are exercised by the cases above', () => {
    expect(reduceUsesWorkgroup(3, 1000)).toBe(true);
    expect(reduceUsesWorkgroup(33, 257)).toBe(true);
    expect(reduceUsesWorkgroup(257, 33)).toBe(false);
  });

  it('drops reduced axes without keepDims, negative axes allowed', async () => {
    const t = device.tensor(seededValues(60, 2), [3, 4, 5]);
    expect(t.sum(-1).shape).toEqual([3, 4]);
    expect(t.mean([0, -1]).shape).toEqual([4]);
    expect(t.max().shape).toEqual([]);
  });

  it('reduce a non-contiguous view', async () => {
    const shape = [6, 7, 8];
    const x = seededValues(6 * 7 * 8, 3);
    const p = device.tensor(x, shape).permute([2, 0, 1]);
    const ref = reduceCpu('sum', permuteCpu(x, shape, [2, 0, 1]), [8, 6, 7], [1]);
    expectClose(await p.sum(1).data(), ref, { atol: 1e-5, rtol: 1e-5 });
  });

  it('sum of a large vector stays accurate (tree reduction)', async () => {
    const n = 1 << 20;
    const t = device.full([n], 0.1);
    // Sequential f32 accumulation would be off by ~1e-2 relative; pairwise stays near f32 rounding.
    expectClose([await t.sum().item()], [n * Math.fround(0.1)], { atol: 0, rtol: 1e-5 });
  });

  it('max and min propagate infinities', async () => {
    const t = device.tensor([-Infinity, -Infinity, 3, Infinity]);
    expect(await t.max().item()).toBe(Infinity);
    expect(await t.narrow(0, 0, 2).max().item()).toBe(-Infinity);
  });

  it('errors name the op and axis', () => {
    const t = device.zeros([2, 3]);
    expect(() => t.sum(2)).toThrow(ShapeError);
    expect(() => t.sum(2)).toThrow(/sum: axis 2 is out of range for rank 2/);
    expect(() => t.sum([0, 0])).toThrow(/repeated axis/);
    expect(() => device.zeros([0, 3]).max(0)).toThrow(/empty axis/);
  });

  it('sum over an empty axis is zero and mean is NaN', async () => {
    const t = device.zeros([0, 3]);
    expect(Array.from(await t.sum(0).data())).toEqual([0, 0, 0]);
    expect(Number.isNaN((await t.mean(0).data())[0])).toBe(true);
  });
});

describe('reduce kernel variants', () => {
  // Per workgroup: the tree, and one subgroup where this adapter has a fixed subgroup size.
  const rowVariants = (): RowReduce[] => {
    const s = fixedSubgroupSize(device);
    return s !== null && s >= 8 ? [TREE_ROW_REDUCE, { wg: s, subgroup: true }] : [TREE_ROW_REDUCE];
  };

  it('every op compiles per thread, per workgroup (at the ranks the launcher produces) and per vec4 column', async () => {
    const kernels = [];
    for (const op of ['sum', 'max', 'min'] as ReduceOpName[]) {
      for (const row of [null, ...rowVariants()]) {
        for (const [kept, red] of [[0, 1], [1, 1], [2, 3], [8, 8]]) kernels.push(reduceKernel(op, kept, red, row));
      }
      kernels.push(reduceColumnsKernel(op));
    }
    expect(await expectCompiles(device, kernels)).toBe(kernels.length);
  });

  it('per workgroup, the tree and the subgroup reductions both match the CPU reference', async () => {
    expect(defaultRowReduce(device).subgroup).toBe(device.isCpuAdapter && (fixedSubgroupSize(device) ?? 0) >= 8);
    const [nOut, r] = [5, 1000];
    const data = seededValues(nOut * r, 71);
    const x = device.tensor(data, [nOut, r]);
    const plan = { keptShape: [nOut], keptStrides: [r], redShape: [r], redStrides: [1] };
    for (const row of rowVariants()) {
      for (const op of ['sum', 'max', 'min'] as ReduceOpName[]) {
        const out = Tensor.empty(device, [nOut]);
        launch(reduceKernel(op, 1, 1, row), { out, inp: x }, reduceParams(op, nOut, r, 0, 1, plan), reduceWorkgroups(nOut, true));
        // Sums of 1000 values in [-1, 1]: f32 rounding of partial sums, far below 1e-4.
        expectClose(await out.data(), reduceCpu(op, data, [nOut, r], [1]), { atol: 1e-4, rtol: 1e-5 }, `${op} ${row.subgroup ? 'subgroup' : 'tree'} of ${row.wg}`);
        out.dispose();
      }
    }
    x.dispose();
  });
});
