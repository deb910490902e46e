// Gradient checks of the elementwise ops (engine/ops/elementwise.ts) against central differences of the CPU reference.

import { beforeAll, describe, expect, it } from 'vitest';
import { elementwiseCpu, type ElementwiseOpName } from '../../kernels/elementwise.js';
import { elementwise, where, type Device, type Tensor } from '../../engine/node.js';
import { broadcastCpu, getDevice } from '../helpers.js';
import { gradCheck } from '../gradcheck.js';

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

// Domains keep inputs away from kinks and singularities, where finite differences mean nothing.
const UNARY_DOMAIN: Partial<Record<ElementwiseOpName, [number, number]>> = {
  log: [0.2, 3], sqrt: [0.2, 3], rsqrt: [0.2, 3], reciprocal: [0.3, 3],
  abs: [0.1, 2], relu: [0.1, 2],
};

const unaryOps: ElementwiseOpName[] = ['identity', 'neg', 'exp', 'log', 'sqrt', 'rsqrt', 'abs', 'square', 'reciprocal', 'sin', 'cos', 'tanh', 'sigmoid', 'relu', 'gelu'];

describe('gradient checks: unary ops', () => {
  it.each(unaryOps)('%s', async (op) => {
    const [lo, hi] = UNARY_DOMAIN[op] ?? [-2, 2];
    // abs/relu: half the inputs negative, away from 0.
    const signFlip = op === 'abs' || op === 'relu';
    await gradCheck(device, {
      name: op,
      inputs: [{ shape: [3, 7], lo, hi }],
      gpu: ([x]) => (signFlip ? elementwise(op, [x.mul(device.tensor([1, -1, 1, -1, 1, -1, 1]))]) : elementwise(op, [x])),
      cpu: ([x]) => {
        const xx = signFlip ? x.map((v, i) => v * [1, -1, 1, -1, 1, -1, 1][i % 7]) : x;
        return elementwiseCpu(op, [xx]);
      },
    });
  });

  it('sign has no gradient path (zero)', async () => {
    const x = device.tensor([1, -2, 3]).requireGrad();
    x.sign().mul(x).sum().backward(); // d/dx (sign(x)·x) = sign(x), via the mul only
    expect(Array.from(await x.grad!.data())).toEqual([1, -1, 1]);
  });
});

describe('gradient checks: binary ops with broadcasting', () => {
  const shapes: [number[], number[]][] = [[[4, 5], [4, 5]], [[3, 1, 5], [4, 1]], [[5], [2, 3, 5]]];
  for (const op of ['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum'] as const) {
    it.each(shapes)(`${op} %j %j`, async (sa, sb) => {
      const out = sa.length >= sb.length ? sa.map((d, i) => Math.max(d, sb[i - (sa.length - sb.length)] ?? 1)) : sb.map((d, i) => Math.max(d, sa[i - (sb.length - sa.length)] ?? 1));
      await gradCheck(device, {
        name: op,
        inputs: [
          { shape: sa, lo: op === 'pow' ? 0.5 : -2, hi: 2 },
          { shape: sb, lo: op === 'div' ? 0.5 : -2, hi: 2 },
        ],
        gpu: ([a, b]) => a[op](b),
        cpu: ([a, b]) => elementwiseCpu(op, [broadcastCpu(a, sa, out), broadcastCpu(b, sb, out)]),
      });
    });
  }

  it('scalar variants', async () => {
    const cases: [string, (x: Tensor) => Tensor, (v: number) => number][] = [
      ['add 2', (x) => x.add(2), (v) => v + 2],
      ['mul -3', (x) => x.mul(-3), (v) => v * -3],
      ['div 4', (x) => x.div(4), (v) => v / 4],
      ['2 - x', (x) => x.rsub(2), (v) => 2 - v],
      ['pow 3', (x) => x.pow(3), (v) => v ** 3],
      ['pow 0.5', (x) => x.pow(0.5), (v) => Math.sqrt(v)],
      ['clamp', (x) => x.clamp(0.8, 1.6), (v) => Math.min(Math.max(v, 0.8), 1.6)],
      ['1 / x', (x) => x.reciprocal().mul(1), (v) => 1 / v],
    ];
    for (const [name, gpu, f] of cases) {
      await gradCheck(device, {
        name,
        // Values kept 0.01 away from the clamp bounds so no difference straddles a kink.
        inputs: [{ shape: [2, 9], data: Array.from({ length: 18 }, (_, i) => 0.515 + 0.1 * i) }],
        gpu: ([x]) => gpu(x),
        cpu: ([x]) => x.map(f),
      });
    }
  });

  it('where', async () => {
    const cond = [1, 0, 0, 1, 1, 0];
    await gradCheck(device, {
      name: 'where',
      inputs: [{ shape: [6], data: cond, grad: false }, { shape: [6] }, { shape: [1] }],
      gpu: ([c, a, b]) => where(c, a, b),
      cpu: ([c, a, b]) => c.map((v, i) => (v !== 0 ? a[i] : b[0])),
    });
  });
});
