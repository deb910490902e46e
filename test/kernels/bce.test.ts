// The BCE-with-logits kernel (kernels/bce.ts) against the CPU reference, and it compiles.

import { beforeAll, describe, expect, it } from 'vitest';
import { bceWithLogitsCpu, bceWithLogitsKernel } from '../../kernels/bce.js';
import { bceWithLogits, type Device } from '../../engine/node.js';
import { expectClose, expectCompiles, getDevice, seededValues } from '../helpers.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

describe('bceWithLogits', () => {
  const n = 6;
  const labels = 5;
  const logits = Array.from(seededValues(n * labels, 5, -8, 8));
  logits[0] = 40; // far in the tails: the stable form must not overflow
  logits[1] = -40;
  const targets = Array.from(seededValues(n * labels, 6, 0, 1), (v) => (v > 0.6 ? 1 : 0));
  const posWeight = [1, 2.5, 0.4, 9, 1.7];
  const weight = Array.from(seededValues(n * labels, 7, 0, 1), (v) => (v > 0.2 ? 1 : 0));

  it('forward matches the CPU reference, with pos_weight and element weights', async () => {
    const loss = bceWithLogits(device.tensor(logits, [n, labels]), device.tensor(targets, [n, labels]), { posWeight: device.tensor(posWeight) });
    expectClose([await loss.item()], [bceWithLogitsCpu(logits, targets, posWeight)], { atol: 1e-6, rtol: 1e-5 });
    const wl = bceWithLogits(device.tensor(logits, [n, labels]), device.tensor(targets, [n, labels]), {
      posWeight: device.tensor(posWeight),
      weight: device.tensor(weight, [n, labels]),
    });
    expectClose([await wl.item()], [bceWithLogitsCpu(logits, targets, posWeight, weight)], { atol: 1e-6, rtol: 1e-5 });
  });
});

describe('bceWithLogits operands', () => {
  it('contiguous views at non-zero offsets are read from their offsets', async () => {
    const logits = seededValues(12, 14, -4, 4);
    const targets = Array.from(seededValues(12, 15, 0, 1), (v) => (v > 0.5 ? 1 : 0));
    const x = device.tensor(logits, [4, 3]).narrow(0, 2, 2);
    const y = device.tensor(targets, [4, 3]).narrow(0, 1, 2);
    const loss = bceWithLogits(x, y);
    expectClose([await loss.item()], [bceWithLogitsCpu(logits.subarray(6), targets.slice(3, 9), [1, 1, 1])], { atol: 1e-6, rtol: 1e-5 });
  });
});

describe('bceWithLogits kernel variants', () => {
  it('the kernel compiles', async () => {
    expect(await expectCompiles(device, [bceWithLogitsKernel()])).toBe(1);
  });
});
