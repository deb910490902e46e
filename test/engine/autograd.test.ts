import { beforeAll, describe, expect, it } from 'vitest';
import { ELEMENTWISE_OPS, elementwiseCpu, type ElementwiseOpName } from '../../kernels/elementwise.js';
import { reduceCpu } from '../../kernels/reduce.js';
import { concat, elementwise, noGrad, tidy, where, type Device, type Tensor } from '../../engine/node.js';
import { broadcastCpu, getDevice, permuteCpu } from '../helpers.js';
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

describe('gradient checks: reductions', () => {
  const shape = [3, 4, 5];
  for (const op of ['sum', 'mean', 'max', 'min'] as const) {
    it.each([[[0]], [[1, 2]], [[0, 1, 2]], [[2]]])(`${op} over %j`, async (axes) => {
      await gradCheck(device, {
        name: `${op}${JSON.stringify(axes)}`,
        inputs: [{ shape }],
        gpu: ([x]) => x[op](axes),
        cpu: ([x]) => {
          const r = reduceCpu(op === 'mean' ? 'sum' : op, x, shape, axes);
          const n = axes.reduce((a, i) => a * shape[i], 1);
          return op === 'mean' ? r.map((v) => v / n) : r;
        },
      });
    });
  }

  it('max splits the gradient among ties', async () => {
    const x = device.tensor([1, 3, 3, 2]).requireGrad();
    x.max().backward();
    expect(Array.from(await x.grad!.data())).toEqual([0, 0.5, 0.5, 0]);
  });
});

describe('gradient checks: shape ops', () => {
  const shape = [2, 3, 4];
  it('reshape, permute, transpose', async () => {
    await gradCheck(device, {
      name: 'permute-reshape',
      inputs: [{ shape }],
      gpu: ([x]) => x.permute([2, 0, 1]).reshape([4, 6]).transpose().mul(x.reshape([6, 4])),
      cpu: ([x]) => {
        const p = permuteCpu(x, shape, [2, 0, 1]); // [4, 2, 3] -> [4, 6]
        const t = permuteCpu(p, [4, 6], [1, 0]); // [6, 4]
        return t.map((v, i) => v * x[i]);
      },
    });
  });

  it('slice, narrow, expand, squeeze, unsqueeze, contiguous', async () => {
    await gradCheck(device, {
      name: 'views',
      inputs: [{ shape }, { shape: [3, 1] }],
      gpu: ([x, b]) => x.slice([0, 1, 1], [2, 3, 4]).add(b.narrow(0, 1, 2).unsqueeze(0).expand([2, 2, 3])).squeeze().contiguous(),
      cpu: ([x, b]) => {
        const out: number[] = [];
        for (let i = 0; i < 2; i++) for (let j = 1; j < 3; j++) for (let k = 1; k < 4; k++) out.push(x[i * 12 + j * 4 + k] + b[j]);
        return out;
      },
    });
  });

  it('concat', async () => {
    await gradCheck(device, {
      name: 'concat',
      inputs: [{ shape: [2, 3] }, { shape: [2, 1] }, { shape: [3, 2] }],
      gpu: ([a, b, c]) => concat([a, b, c.transpose()], 1),
      cpu: ([a, b, c]) => {
        const out: number[] = [];
        for (let i = 0; i < 2; i++) {
          for (let j = 0; j < 3; j++) out.push(a[i * 3 + j]);
          out.push(b[i]);
          for (let j = 0; j < 3; j++) out.push(c[j * 2 + i]);
        }
        return out;
      },
    });
  });
});

describe('autograd mechanics', () => {
  it('a tensor used twice gets both contributions', async () => {
    const x = device.tensor([1, 2, 3]).requireGrad();
    const y = x.mul(x).add(x.mul(3)); // dy/dx = 2x + 3
    y.sum().backward();
    expect(Array.from(await x.grad!.data())).toEqual([5, 7, 9]);
  });

  it('gradients accumulate across backward calls until zeroGrad', async () => {
    const x = device.tensor([1, 2]).requireGrad();
    x.mul(2).sum().backward();
    x.mul(3).sum().backward();
    expect(Array.from(await x.grad!.data())).toEqual([5, 5]);
    x.zeroGrad();
    expect(x.grad).toBeNull();
  });

  it('noGrad records nothing; detach cuts the graph', () => {
    const x = device.tensor([1, 2]).requireGrad();
    const y = noGrad(() => x.mul(2));
    expect(y.requiresGrad).toBe(false);
    expect(y.gradFn).toBeNull();
    expect(x.mul(2).detach().requiresGrad).toBe(false);
  });

  it('backward frees the graph, and a second backward says so', () => {
    const x = device.tensor([1, 2]).requireGrad();
    const loss = x.exp().sum();
    loss.backward();
    expect(() => loss.backward()).toThrow(/already freed/);
  });

  it('non-scalar backward needs an explicit gradient', () => {
    const x = device.tensor([1, 2]).requireGrad();
    expect(() => x.mul(2).backward()).toThrow(/not a scalar/);
  });

  it('a training step in tidy leaves only parameters and their grads alive', async () => {
    const w = device.randn([16, 8], { seed: 1 }).requireGrad();
    const x = device.randn([4, 16], { seed: 2 });
    const step = () =>
      tidy(() => {
        const loss = x.matmul(w).gelu().square().mean();
        loss.backward();
        w.zeroGrad();
      });
    step();
    await device.sync();
    const live = device.memory().liveBytes;
    for (let i = 0; i < 20; i++) step();
    await device.sync();
    expect(device.memory().liveBytes).toBe(live);
  });

  it('a forward pass whose output is disposed frees its saved tensors without backward', async () => {
    const w = device.randn([64, 64], { seed: 3 }).requireGrad();
    await device.sync();
    const live = device.memory().liveBytes;
    tidy(() => {
      w.exp().mul(w).sigmoid().sum();
    });
    expect(device.memory().liveBytes).toBe(live);
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

describe('gradient checks: fused attention', () => {
  it('attention(q, k, v) on strided views', async () => {
    const { attention } = await import('../../engine/node.js');
    const { attentionCpu } = await import('../../kernels/attention.js');
    const [b, h, n, d] = [1, 2, 5, 8];
    await gradCheck(device, {
      name: 'attention',
      // q arrives as a permuted view, as in the ViT (qkv reshaped and permuted).
      inputs: [{ shape: [b, n, h, d] }, { shape: [b, h, n, d] }, { shape: [b, h, n, d] }],
      gpu: ([q, k, v]) => attention(q.permute([0, 2, 1, 3]), k, v),
      cpu: ([q, k, v]) => attentionCpu(permuteCpu(q, [b, n, h, d], [0, 2, 1, 3]), k, v, b, h, n, d, 1 / Math.sqrt(d)).out,
    });
  });
});
