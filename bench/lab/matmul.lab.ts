// Matmul kernel lab: times the variants of kernels/matmul.ts on the shapes that matter (1024³ and the
// ViT-B/16 forward and backward products at batch 8) and prints GFLOP/s. Run it on the built-in
// adapter with
//
//   npx esbuild bench/lab/matmul.lab.ts --bundle --platform=node --format=esm --packages=external \
//     --outfile=node_modules/.cache/vitgpu-lab/matmul.lab.mjs && node node_modules/.cache/vitgpu-lab/matmul.lab.mjs
//
// Arguments (all optional): --shapes 1024,qkv,proj,fc1,fc2,fc1-dx,fc2-dw,fc2-dx,fc1-dw,MxKxN  --configs default,subgroup,
// register,tiled,window,window@w1,subgroup:16x1,register:8x2,register:4x1/strided,...  (rows x column
// groups; /strided forces scalar loads; @wN caps 'window' at N uniform windows per pass)  --reps 5  --epilogue (bias+GELU+residual+pre).
//
// It prints milliseconds and GFLOP/s of the best and the median run, and the rate per CPU time × cores
// ("cpu-norm"): the lavapipe threads run in this process, so when other jobs share the machine that
// column still says what the kernel does with all cores to itself. Each timed run ends with a device
// sync; every configuration is first run once (pipeline compile) and checked on sampled entries
// against an f64 dot product, then the configurations' timed runs are interleaved.

// Last runs (lavapipe at 512-bit vectors, Mesa 25.0.7 / LLVM 15, 2 AMD EPYC cores, nothing else running,
// 2026-11-30 08:55 UTC, a fast phase of this host), `--configs subgroup,window`, GFLOP/s median:
//   1024³ 55.8 / 58.4   qkv 54.4 / 63.7   fc1 51.2 / 59.1   fc2 52.8 / 61.3   fc1-dx 50.2 / 64.9
//   fc2-dw 58.0 / 61.1  fc1-dw 49.6 / 65.2
// The host's speed drifts by up to 2× within minutes (1024³ 'subgroup' 28.7 at 09:16), so compare
// configurations only within one run. The 'window' variant's design and what it replaced:
// bench/RESULTS.md ("Speed work of 2026-11-30 08:30–09:20"). Earlier, at 256-bit vectors: 'subgroup'
// 32 rows × 32 columns 26.0 at 1024³; 'register' 8x1 5.5; 'tiled' 2.8-3.7; tfjs-backend-webgpu about
// 5 and jax-js 5 at 1024³ (../shared/docs/WEBGPU-LINUX.md).

import { availableParallelism, loadavg } from 'node:os';
import { createNodeDevice, type Device, type Tensor } from '../../engine/node.js';
import { matmulFused } from '../../kernels/matmul.js';
import { matmulPlan, type MatmulOptions, type MatmulVariantName } from '../../kernels/matmul-plan.js';
import { matmulKernelKey } from '../../kernels/matmul-wgsl.js';

interface Shape {
  id: string;
  m: number;
  k: number;
  n: number;
  /** How the operands are stored: A [M, K] or Aᵀ [K, M]; B [K, N] or Bᵀ [N, K] (a Linear weight). */
  aT: boolean;
  bT: boolean;
  what: string;
}

const TOKENS = 8 * 197; // ViT-B/16 at batch 8: 1576 tokens
const SHAPES: Shape[] = [
  { id: '1024', m: 1024, k: 1024, n: 1024, aT: false, bT: false, what: 'A·B, both contiguous' },
  { id: 'k256', m: TOKENS, k: 256, n: 2304, aT: false, bT: true, what: 'x·Wᵀ with one window of k' },
  { id: 'qkv4', m: 4 * TOKENS, k: 768, n: 2304, aT: false, bT: true, what: 'x·Wᵀ (qkv) at 4× the tokens' },
  { id: 'qkv', m: TOKENS, k: 768, n: 2304, aT: false, bT: true, what: 'x·Wᵀ (qkv)' },
  { id: 'proj', m: TOKENS, k: 768, n: 768, aT: false, bT: true, what: 'x·Wᵀ (attention proj)' },
  { id: 'fc1', m: TOKENS, k: 768, n: 3072, aT: false, bT: true, what: 'x·Wᵀ (MLP fc1)' },
  { id: 'fc2', m: TOKENS, k: 3072, n: 768, aT: false, bT: true, what: 'x·Wᵀ (MLP fc2)' },
  { id: 'fc1-dx', m: TOKENS, k: 3072, n: 768, aT: false, bT: false, what: 'dX = dY·W (fc1 backward)' },
  { id: 'fc2-dw', m: 768, k: TOKENS, n: 3072, aT: true, bT: false, what: 'dW = dYᵀ·X (fc2 backward)' },
  { id: 'fc2-dx', m: TOKENS, k: 768, n: 3072, aT: false, bT: false, what: 'dX = dY·W (fc2 backward)' },
  { id: 'fc1-dw', m: 3072, k: TOKENS, n: 768, aT: true, bT: false, what: 'dW = dYᵀ·X (fc1 backward)' },
];

/** 'MxKxN': x·Wᵀ with W stored [N, K], as a Linear layer's forward. */
function linearShape(id: string): Shape | undefined {
  const dims = /^(\d+)x(\d+)x(\d+)$/.exec(id);
  if (!dims) return undefined;
  const [m, k, n] = dims.slice(1).map(Number);
  return { id, m, k, n, aT: false, bT: true, what: 'x·Wᵀ' };
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

/** 'default' | variant | variant:rowsxcolVecs, and '/strided' to force scalar strided loads. */
function parseConfig(spec: string): MatmulOptions {
  const [main, windows] = spec.split('@w');
  const opts = parseBlocking(main);
  if (windows) opts.windows = Number(windows);
  return opts;
}

function parseBlocking(spec: string): MatmulOptions {
  const [body, suffix] = spec.split('/');
  if (suffix && suffix !== 'strided') throw new Error(`unknown config suffix /${suffix}`);
  const forceStrided = suffix === 'strided';
  if (body === 'default') return { forceStrided };
  const [variant, blocking] = body.split(':');
  const opts: MatmulOptions = { variant: variant as MatmulVariantName, forceStrided };
  if (blocking) {
    const [rows, colVecs] = blocking.split('x').map(Number);
    opts.rows = rows;
    opts.colVecs = colVecs;
  }
  return opts;
}

function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

interface Operands {
  a: Tensor;
  b: Tensor;
  at: (i: number, p: number) => number;
  bt: (p: number, j: number) => number;
  dispose: () => void;
}

function operands(device: Device, s: Shape): Operands {
  const ad = values(s.m * s.k, 1);
  const bd = values(s.k * s.n, 2);
  const aStore = device.tensor(ad, s.aT ? [s.k, s.m] : [s.m, s.k]);
  const bStore = device.tensor(bd, s.bT ? [s.n, s.k] : [s.k, s.n]);
  const a = s.aT ? aStore.transpose() : aStore;
  const b = s.bT ? bStore.transpose() : bStore;
  return {
    a,
    b,
    at: (i, p) => (s.aT ? ad[p * s.m + i] : ad[i * s.k + p]),
    bt: (p, j) => (s.bT ? bd[j * s.k + p] : bd[p * s.n + j]),
    dispose: () => {
      for (const t of [a, b, aStore, bStore]) t.dispose();
    },
  };
}

async function main(): Promise<void> {
  const shapeIds = arg('shapes', SHAPES.map((s) => s.id).join(',')).split(',');
  const configs = arg('configs', 'default').split(',');
  const reps = Number(arg('reps', '5'));
  const withEpilogue = process.argv.includes('--epilogue');
  const device = await createNodeDevice();
  const cores = availableParallelism();
  console.log(`adapter: ${device.name}; ${cores} cores; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log(`shape    M×K×N           config${' '.repeat(43)}best   med  GFLOP/s best    med  cpu-norm  max|err|`);
  for (const id of shapeIds) {
    const s = SHAPES.find((x) => x.id === id) ?? linearShape(id);
    if (!s) throw new Error(`unknown shape ${id}; known: ${SHAPES.map((x) => x.id).join(', ')}`);
    const ops = operands(device, s);
    const bias = withEpilogue ? device.tensor(values(s.n, 3), [s.n]) : undefined;
    const residual = withEpilogue ? device.tensor(values(s.m * s.n, 4), [s.m, s.n]) : undefined;
    const epilogue = withEpilogue ? { bias, gelu: true, residual, preActivation: true } : {};
    const flops = 2 * s.m * s.n * s.k;
    // Every configuration is compiled and checked first; then the timed runs take turns (config 1,
    // config 2, ..., config 1, ...), so a change of machine load falls on all of them alike.
    const prepared = [];
    for (const spec of configs) {
      const opts = parseConfig(spec);
      const run = () => matmulFused(ops.a, ops.b, epilogue, opts);
      const key = matmulKernelKey(matmulPlan(ops.a, ops.b, epilogue, opts)).replace(/^matmul:/, '');
      let err = 0;
      {
        const r = run();
        const got = await (r.pre ?? r.out).data();
        const biasData = bias ? await bias.data() : null;
        for (let t = 0; t < 64; t++) {
          const i = (t * 7919) % s.m;
          const j = (t * 104729 + 17) % s.n;
          let ref = biasData ? biasData[j] : 0;
          for (let p = 0; p < s.k; p++) ref += ops.at(i, p) * ops.bt(p, j);
          err = Math.max(err, Math.abs(got[i * s.n + j] - ref));
        }
        r.out.dispose();
        r.pre?.dispose();
      }
      prepared.push({ spec, key, run, err, times: [] as number[], cpuMs: 0 });
    }
    for (let i = 0; i < reps; i++) {
      for (const c of prepared) {
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        const r = c.run();
        await device.sync();
        c.times.push(performance.now() - t0);
        const cpu = process.cpuUsage(cpu0);
        c.cpuMs += (cpu.user + cpu.system) / 1000 / reps;
        r.out.dispose();
        r.pre?.dispose();
      }
    }
    for (const { spec, key, times, cpuMs, err } of prepared) {
      const best = Math.min(...times);
      const median = [...times].sort((x, y) => x - y)[Math.floor(reps / 2)];
      const norm = (flops / cpuMs / 1e6) * cores;
      console.log(
        `${s.id.padEnd(8)} ${`${s.m}×${s.k}×${s.n}`.padEnd(15)} ${`${spec} (${key})`.padEnd(48)} ${best.toFixed(0).padStart(5)} ${median.toFixed(0).padStart(5)}  ${(flops / best / 1e6).toFixed(2).padStart(7)} ${(flops / median / 1e6).toFixed(2).padStart(7)}  ${norm.toFixed(2).padStart(7)}  ${err.toExponential(1)}`,
      );
    }
    ops.dispose();
    bias?.dispose();
    residual?.dispose();
  }
  device.destroy();
  // Dawn keeps the process alive while its instance is referenced.
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
