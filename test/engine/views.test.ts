import { beforeAll, describe, expect, it } from 'vitest';
import { ShapeError, concat, type Device } from '../../engine/node.js';
import { broadcastCpu, getDevice, permuteCpu, seededValues } from '../helpers.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

describe('views and copies', () => {
  it('reshape of contiguous data shares storage; -1 is inferred', async () => {
    const x = seededValues(5 * 6 * 7, 1);
    const t = device.tensor(x, [5, 6, 7]);
    const r = t.reshape([30, -1]);
    expect(r.shape).toEqual([30, 7]);
    expect(r.storage).toBe(t.storage);
    expect(Array.from(await r.data())).toEqual(Array.from(x));
    expect(() => t.reshape([4, -1])).toThrow(/cannot reshape \[5, 6, 7\]/);
    expect(() => t.reshape([-1, -1])).toThrow(/only one -1/);
  });

  it('reshape of a permuted view copies in the permuted order', async () => {
    const x = seededValues(4 * 9, 2);
    const t = device.tensor(x, [4, 9]).transpose();
    const r = t.reshape([36]);
    expect(Array.from(await r.data())).toEqual(Array.from(permuteCpu(x, [4, 9], [1, 0]), Math.fround));
  });

  it('permute, transpose and contiguous', async () => {
    const shape = [2, 3, 5, 7];
    const x = seededValues(210, 3);
    const t = device.tensor(x, shape);
    const p = t.permute([3, 1, 0, 2]);
    expect(p.shape).toEqual([7, 3, 2, 5]);
    const c = p.contiguous();
    expect(c.isContiguous).toBe(true);
    expect(Array.from(await c.data())).toEqual(Array.from(permuteCpu(x, shape, [3, 1, 0, 2]), Math.fround));
    expect(Array.from(await t.transpose(0, -1).data())).toEqual(Array.from(permuteCpu(x, shape, [3, 1, 2, 0]), Math.fround));
    expect(() => t.permute([0, 1, 1, 2])).toThrow(/not a permutation/);
  });

  it('slice and narrow with negative bounds', async () => {
    const x = seededValues(8 * 10, 4);
    const t = device.tensor(x, [8, 10]);
    const s = t.slice([2, -4], [-1, 10]);
    expect(s.shape).toEqual([5, 4]);
    const ref: number[] = [];
    for (let i = 2; i < 7; i++) for (let j = 6; j < 10; j++) ref.push(x[i * 10 + j]);
    expect(Array.from(await s.data())).toEqual(ref);
    const n = t.narrow(1, 3, 2);
    expect(n.shape).toEqual([8, 2]);
    expect(() => t.slice([0, 5], [8, 11])).toThrow(/out of range for axis 1/);
  });

  it('expand broadcasts without copying; squeeze and unsqueeze', async () => {
    const t = device.tensor([1, 2, 3], [3, 1]);
    const e = t.expand([2, 3, 4]);
    expect(e.storage).toBe(t.storage);
    expect(Array.from(await e.data())).toEqual(Array.from(broadcastCpu([1, 2, 3], [3, 1], [2, 3, 4])));
    expect(t.squeeze().shape).toEqual([3]);
    expect(t.squeeze(1).shape).toEqual([3]);
    expect(t.unsqueeze(0).shape).toEqual([1, 3, 1]);
    expect(t.unsqueeze(-1).shape).toEqual([3, 1, 1]);
    expect(() => t.squeeze(0)).toThrow(/has size 3, not 1/);
    expect(() => t.expand([2, 4, 4])).toThrow(ShapeError);
  });

  it('concat along any axis, including views and odd sizes', async () => {
    const a = seededValues(3 * 5, 5);
    const b = seededValues(3 * 2, 6);
    const ta = device.tensor(a, [3, 5]);
    const tb = device.tensor(b, [2, 3]).transpose(); // a [3, 2] view
    const c = concat([ta, tb], 1);
    expect(c.shape).toEqual([3, 7]);
    const bt = permuteCpu(b, [2, 3], [1, 0]);
    const ref: number[] = [];
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 5; j++) ref.push(a[i * 5 + j]);
      for (let j = 0; j < 2; j++) ref.push(bt[i * 2 + j]);
    }
    expect(Array.from(await c.data())).toEqual(ref.map(Math.fround));
    const c0 = concat([ta, ta, device.zeros([0, 5])], 0);
    expect(c0.shape).toEqual([6, 5]);
    expect(Array.from(await c0.data())).toEqual([...a, ...a]);
    expect(() => concat([ta, device.zeros([3, 4, 1])], 1)).toThrow(/does not match/);
  });

  it('array() nests values in the tensor shape; item() needs one element', async () => {
    const t = device.tensor([[1, 2, 3], [4, 5, 6]]);
    expect(await t.array()).toEqual([[1, 2, 3], [4, 5, 6]]);
    expect(await device.tensor(7).item()).toBe(7);
    await expect(t.item()).rejects.toThrow(/has 6 elements/);
    expect(() => device.tensor([1, 2, 3], [2, 2])).toThrow(/3 values do not fill shape \[2, 2\]/);
  });
});
