// Gradient check of bceWithLogits (engine/ops/bce.ts) and its shape errors.

import { beforeAll, describe, expect, it } from 'vitest';
import { bceWithLogitsCpu } from '../../kernels/bce.js';
import { bceWithLogits, type Device } from '../../engine/node.js';
import { getDevice, seededValues } from '../helpers.js';
import { gradCheck } from '../gradcheck.js';

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

  it('gradient check', async () => {
    await gradCheck(device, {
      name: 'bceWithLogits',
      inputs: [{ shape: [n, labels], data: logits.map((v) => Math.max(-8, Math.min(8, v))) }, { shape: [n, labels], data: targets, grad: false }],
      gpu: ([x, y]) => bceWithLogits(x, y, { posWeight: device.tensor(posWeight), weight: device.tensor(weight, [n, labels]) }),
      cpu: ([x, y]) => [bceWithLogitsCpu(x, y, posWeight, weight)],
    });
  });

  it('errors name the shapes', () => {
    expect(() => bceWithLogits(device.zeros([2, 3]), device.zeros([3, 2]))).toThrow(/logits \[2, 3\] and targets \[3, 2\]/);
    expect(() => bceWithLogits(device.zeros([2, 3]), device.zeros([2, 3]), { posWeight: device.ones([2]) })).toThrow(/posWeight \[2\] must be \[3\]/);
  });
});
