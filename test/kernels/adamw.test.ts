// The AdamW kernel (kernels/adamw.ts) and gradient clipping against the CPU reference, and the kernel compiles.

import { beforeAll, describe, expect, it } from 'vitest';
import { adamwCpu, adamwKernel, adamwVec4Kernel } from '../../kernels/adamw.js';
import { AdamW, gradNormScale, type Device } from '../../engine/node.js';
import { expectClose, expectCompiles, getDevice, seededValues } from '../helpers.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

describe('AdamW and gradient clipping', () => {
  // 35 elements take the scalar kernel, 48 the vec4 one.
  it.each([
    [[5, 7], 'adamw'],
    [[6, 8], 'adamw_v4'],
  ])('three steps of %j match the CPU reference, with weight decay and a clipping scale (kernel %s)', async (shape, kernel) => {
    const n = shape[0] * shape[1];
    const p0 = seededValues(n, 8);
    const p = device.tensor(p0, shape).requireGrad();
    const hyper = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05 };
    const opt = new AdamW([p], hyper);
    const ref = Float64Array.from(p0);
    const m = new Float64Array(n);
    const v = new Float64Array(n);
    const session = device.profile();
    for (let step = 1; step <= 3; step++) {
      const gvals = seededValues(n, 100 + step, -2, 2);
      p.setGrad(device.tensor(gvals, shape));
      const { norm, scale } = gradNormScale([p], 1.5);
      const normCpu = Math.sqrt(gvals.reduce((s, g) => s + g * g, 0));
      expectClose([await norm.item()], [normCpu], { atol: 0, rtol: 1e-5 });
      const clip = Math.min(1, 1.5 / (normCpu + 1e-6));
      opt.step({ gradScale: scale });
      adamwCpu(ref, gvals, m, v, hyper, step, clip);
      p.zeroGrad();
    }
    // f32 state over 3 steps: ~1e-6 relative on the update.
    expectClose(await p.data(), ref, { atol: 1e-6, rtol: 1e-5 });
    expect((await session.stop()).kernels.find((k) => k.name.startsWith('adamw'))).toMatchObject({ name: kernel, calls: 3 });
  });
});

describe('AdamW kernel variants', () => {
  it('the kernels compile', async () => {
    expect(await expectCompiles(device, [adamwKernel(), adamwVec4Kernel()])).toBe(2);
  });
});
