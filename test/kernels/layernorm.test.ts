// The layerNorm kernels (kernels/layernorm.ts) against the CPU reference, and every kernel compiles.

import { beforeAll, describe, expect, it } from 'vitest';
import { layerNormBackwardKernel, layerNormCpu, layerNormForwardKernel, layerNormParamGradKernel } from '../../kernels/layernorm.js';
import { layerNorm, type Device } from '../../engine/node.js';
import { expectClose, expectCompiles, getDevice, seededValues } from '../helpers.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

describe('layerNorm', () => {
  it.each([
    [7, 33, 1e-5],
    [197, 768, 1e-6],
    [3, 1, 1e-12],
    [5, 257, 1e-12],
  ])('forward [%i, %i] eps %d matches the CPU reference', async (rows, d, eps) => {
    // A large common offset checks the two-pass variance.
    const x = seededValues(rows * d, 1, 99, 101);
    const g = seededValues(d, 2, 0.5, 1.5);
    const b = seededValues(d, 3);
    const y = layerNorm(device.tensor(x, [rows, d]), device.tensor(g), device.tensor(b), eps);
    // f32 normalisation of values near 100 with unit spread: ~1e-5 relative error in x - mean.
    expectClose(await y.data(), layerNormCpu(x, g, b, rows, d, eps).y, { atol: 2e-4, rtol: 1e-4 });
  });
});

describe('layerNorm operands', () => {
  it('a contiguous view at a non-zero offset is read from its offset', async () => {
    // Rows 1..2 of a [3, 4] tensor: contiguous, offset 4 (the row kernels index from element 0).
    const x = seededValues(12, 12);
    const view = device.tensor(x, [3, 4]).narrow(0, 1, 2);
    expect(view.isContiguous && view.offset === 4).toBe(true);
    const y = layerNorm(view, device.ones([4]), device.zeros([4]), 1e-5);
    expectClose(await y.data(), layerNormCpu(x.subarray(4), [1, 1, 1, 1], [0, 0, 0, 0], 2, 4, 1e-5).y, { atol: 1e-5, rtol: 1e-5 });
  });
});

describe('layerNorm kernel variants', () => {
  it('forward, dx and dγ/dβ compile, scalar and vec4', async () => {
    const kernels = [false, true].flatMap((v4) => [layerNormForwardKernel(undefined, v4), layerNormBackwardKernel(undefined, v4), layerNormParamGradKernel(v4)]);
    expect(await expectCompiles(device, kernels)).toBe(6);
  });
});
