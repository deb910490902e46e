// The softmax kernels (kernels/softmax.ts) against the CPU reference, and every kernel compiles.

import { beforeAll, describe, expect, it } from 'vitest';
import { softmaxBackwardKernel, softmaxCpu, softmaxForwardKernel } from '../../kernels/softmax.js';
import { TREE_ROW_REDUCE, defaultRowReduce } from '../../kernels/wgsl.js';
import { softmax, type Device } from '../../engine/node.js';
import { expectClose, expectCompiles, getDevice, seededValues } from '../helpers.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

describe('softmax', () => {
  it.each([[1, 1], [9, 197], [4, 1000], [3, 7]])('forward [%i, %i]', async (rows, d) => {
    const x = seededValues(rows * d, 4, -20, 20);
    const y = softmax(device.tensor(x, [rows, d]));
    expectClose(await y.data(), softmaxCpu(x, rows, d), { atol: 1e-7, rtol: 1e-5 });
  });
});

describe('softmax operands', () => {
  it('a contiguous view at a non-zero offset is read from its offset', async () => {
    const x = seededValues(15, 13, -3, 3);
    const view = device.tensor(x, [3, 5]).narrow(0, 1, 2);
    expect(view.isContiguous && view.offset === 5).toBe(true);
    expectClose(await softmax(view).data(), softmaxCpu(x.subarray(5), 2, 5), { atol: 1e-7, rtol: 1e-5 });
  });
});

describe('softmax kernel variants', () => {
  it('forward and backward compile', async () => {
    // The tree of 64, and (lavapipe) one subgroup, which the launchers use there.
    const rows = [TREE_ROW_REDUCE, defaultRowReduce(device)];
    const kernels = rows.flatMap((v) => [softmaxForwardKernel(v), softmaxBackwardKernel(v)]);
    expect(await expectCompiles(device, kernels)).toBe(new Set(kernels.map((k) => k.source)).size);
  });
});
