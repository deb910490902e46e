// The 'window' matmul kernel (kernels/matmul-wgsl.ts) on raw WebGPU, with WGSL edits, at several
// blockings, timed interleaved in one process. It asks where the kernel's time goes on lavapipe and
// whether a blocking or load form the engine does not use would be faster:
//
//   npx esbuild bench/lab/window.lab.ts --bundle --platform=node --format=esm --packages=external \
//     --outfile=node_modules/.cache/vitgpu-lab/window.lab.mjs && node node_modules/.cache/vitgpu-lab/window.lab.mjs
//
// Arguments (all optional): --shape MxKxN (A [M, K] k-contiguous; default 1576x768x768, the attention
// projection at batch 8)  --configs 64x1,64x2,...  (rows × column vec4s per lane; 16 lanes)
// --edits ,fma,fakeA,fakeB,k8,sparams,wide  (the empty name is the kernel as the engine generates it)  --reps 5  --print
// (print the first configuration's WGSL and stop).
//
// Edits:
//   fma    every accumulator update as a chain of fma() calls instead of `acc += a0*b0 + ... + a3*b3`;
//   fakeA  the loads of A replaced by arithmetic on their index (what the kernel would cost if A were free);
//   wide   A read 16 k's at a time (one array<vec4<f32>, 4> per lane and row group) for 4 blocks of k;
//   fakeB  the loads of B from the windows replaced by arithmetic on their index;
//   k8     two blocks of 4 k's per iteration and one (masked) accumulator write per 8 k's;
//   sparams the params block as a read-only storage buffer, which frees a uniform binding for a 12th
//          window (the only way to run K = 768 at 4 column vec4s, or K = 3072 at 1, in one pass).
//
// B comes from uniform windows filled with arbitrary values (the pack is not timed here); the values of
// the result are not checked: bench/lab/matmul.lab.ts and the tests do that for the engine's kernels.
// The main thread's wait is throttled as in the engine (engine/node.ts), or it would take a core.
//
// Results (2026-11-30 15:20–15:35 UTC, lavapipe at 512-bit vectors, Mesa 25.0.7 / LLVM 15, 2 AMD EPYC
// Zen 4 cores, nothing else running; median GFLOP/s, configurations interleaved in one process; full
// table in bench/RESULTS.md, "The matmul's ceiling on lavapipe, and 128-column tiles"):
//   --edits ,fma,fakeA,fakeA+fma (64x1):    48.7, 47.1, 77.1, 62.6
//   --configs 64x1,48x2,64x2,80x1:          56.5, 58.1, 58.1, 52.6
//   --edits ,wide (64x1):                   68.1, 44.8 (16.5 s to compile)
//   --configs 64x1,64x2 --edits ,fakeA:     68.1, 90.4 (fakeA), 73.4, 90.3 (fakeA)   (15:30, this file)
// Later runs (2026-11-30 17:50–18:00 UTC, same machine, the host noisier: medians spread, best runs quoted):
//   --configs 64x2 --edits ,fakeA,fakeB:    best 76.9, 91.8, 84.7; medians 73.9, 91.4, 77.8. A costs ~20%
//                                           of the kernel, B (8 vec4 gathers per block from the uniform
//                                           windows) ~5%.
//   --configs 64x1,64x2 --edits ,k8:        best 60.2, 57.5 (k8), 72.9, 55.8 (k8): the 8-k sums must be
//                                           held across the block (spilled like the accumulators), and
//                                           the k8 kernel at 64x2 took 34 s to compile. Slower; not used.
//   --shape 1576x768x2304 --configs 64x2,64x4 --edits sparams (11 rounds): best 76.1 and 77.7, medians
//                                           75.4 and 72.4; no gain at 4 column vec4s, and its first
//                                           compile took 111 s (64x2 with storage params: 17 s). sparams
//                                           alone: best 75.2 (uniform) and 75.8 (storage), the same.

import { create, globals } from 'webgpu';
import { applyLavapipeVectorWidth, throttleDawnPolling } from '../../engine/node.js';
import { matmulKernel, matmulParams } from '../../kernels/matmul-wgsl.js';
import { windowK, type MatmulKernelConfig } from '../../kernels/matmul-plan.js';

Object.assign(globalThis, globals);
applyLavapipeVectorWidth(); // before Dawn loads the driver: 16 lanes on AVX-512 CPUs, as in the engine
throttleDawnPolling();

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

type Edit = (wgsl: string) => string;

/** Arithmetic on the load index in place of a load: distinct values per row and lane, nothing to fold. */
const FAKE = 'fn fk(i: u32) -> vec4<f32> { let j = i & 1023u; return vec4<f32>(f32(j), f32(j ^ 5u), f32(j + 3u), f32(j >> 1u)) * 1e-3; }\n';

const fakeA: Edit = (s) =>
  s
    .replace('@compute', `${FAKE}@compute`)
    .replace(/let ag(\d+) = a\[([^\]]+)\];/g, 'let ag$1 = fk($2);')
    // keep `a` bound (the layout is 'auto'), at no cost in the loop
    .replace('var tile:', 'if (K == 1u) { acc0_0 += a[0]; }\n  var tile:');

const fakeB: Edit = (s) =>
  s
    .replace('@compute', `${FAKE}@compute`)
    .replace(/let b(\d+)_(\d+) = bw(\d+)\[([^\]]+)\];/g, 'let b$1_$2 = fk($4);')
    // keep the windows bound (the layout is 'auto'), at no cost in the loop
    .replace('var tile:', (m) => `if (K == 1u) { ${[...s.matchAll(/var<uniform> (bw\d+)/g)].map((w) => `acc0_0 += ${w[1]}[0];`).join(' ')} }\n  ${m}`);

/**
 * Two blocks of 4 k's per loop iteration and one accumulator update per 8 k's (halves the masked
 * accumulator writes). Assumes every window's count of 4-k blocks is even (true for the shapes here).
 */
const k8: Edit = (s) =>
  s.replace(/for \(var q = 0u; q < ([^;]+); q\+\+\) \{\n([\s\S]*?)\n  \}/g, (_m, count: string, body: string) => {
    const first = body.replace(/acc(\d+_\d+) \+= (.*);/g, 'let s$1 = $2;');
    const second = body
      .replace(/\bq\b/g, '(q + 1u)')
      .replace(/\b(ag\d+|v\d+_\d+|b\d+_\d+|kl|k4|k0)\b/g, '$1x')
      .replace(/acc(\d+_\d+) \+= (.*);/g, 'acc$1 += s$1 + $2;');
    return `for (var q = 0u; q < ${count}; q += 2u) {\n${first}\n${second}\n  }`;
  });

/** The params block as a read-only storage buffer, which frees a uniform slot for a 12th window. */
const sparams: Edit = (s) => s.replace('var<uniform> params: Params;', 'var<storage, read> params: Params;');

const fma: Edit = (s) =>
  s.replace(/acc(\d+_\d+) \+= (.*);/g, (_m, id: string, sum: string) => {
    let e = `acc${id}`;
    for (const [x, y] of sum.split(' + ').map((t) => t.split(' * '))) e = `fma(vec4<f32>(${x}), ${y}, ${e})`;
    return `acc${id} = ${e};`;
  });

/** Each window's loop in steps of 4 blocks of k, A read as one array<vec4<f32>, 4> per row group (K % 16 == 0). */
const wide: Edit = (src) => {
  const lines = src.replace('var<storage, read> a: array<vec4<f32>>;', 'var<storage, read> a: array<array<vec4<f32>, 4>>;').split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const loop = /^ {2}for \(var q = 0u; q < (.*); q\+\+\) \{$/.exec(lines[i]);
    if (!loop) {
      out.push(lines[i]);
      continue;
    }
    let j = i + 1;
    const body: string[] = [];
    while (lines[j] !== '  }') body.push(lines[j++]);
    const first = /let k4 = kBase4 \+ (\d+)u \+ q;/.exec(body[0]);
    if (!first) throw new Error('wide: unexpected loop body');
    out.push(`  for (var q16 = 0u; q16 < (${loop[1]}) / 4u; q16++) {`);
    const groups = new Set([...src.matchAll(/let ag(\d+) = a\[/g)].map((m) => m[1]));
    for (const g of groups) out.push(`    let aw${g} = a[(aRow${g} + kBase4 + ${first[1]}u) / 4u + q16];`);
    for (let sub = 0; sub < 4; sub++) {
      out.push(`    { let q = q16 * 4u + ${sub}u;`);
      for (const b of body) out.push(b.replace(/a\[aRow(\d+) \+ k4\]/, `aw$1[${sub}]`));
      out.push('    }');
    }
    out.push('  }');
    i = j;
  }
  return out.join('\n');
};

const EDITS: Record<string, Edit> = {
  '': (s) => s,
  fma,
  fakeA,
  fakeB,
  'fakeA+fakeB': (s) => fakeA(fakeB(s)),
  'fakeA+fma': (s) => fakeA(fma(s)),
  wide,
  sparams,
  k8,
  'sparams+fakeA': (s) => fakeA(sparams(s)),
};

const REPS = Number(arg('reps', '5'));
const [M, K, N] = arg('shape', '1576x768x768').split('x').map(Number);
// The instance is kept for the process's lifetime: Dawn aborts a live device's next submit once a
// dropped instance is collected (engine/node.ts).
const gpu = create([]);
const adapter = await gpu.requestAdapter();
if (!adapter) throw new Error('no WebGPU adapter');
const lanes = (adapter.info as GPUAdapterInfo & { subgroupMinSize?: number }).subgroupMinSize;
if (lanes !== undefined && lanes !== 16) throw new Error(`the kernels here assume subgroups of 16 lanes; this adapter has ${lanes} (LP_NATIVE_VECTOR_WIDTH=512 on lavapipe)`);
const device = await adapter.requestDevice({ requiredFeatures: ['subgroups' as GPUFeatureName] });

function upload(data: Float32Array | Uint32Array, usage: number = GPUBufferUsage.STORAGE): GPUBuffer {
  const b = device.createBuffer({ size: Math.max(16, data.byteLength), usage: usage | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength);
  return b;
}

const a = upload(Float32Array.from({ length: M * K }, (_, i) => Math.sin(i) * 0.5));
const out = device.createBuffer({ size: M * N * 4, usage: GPUBufferUsage.STORAGE });
const windowBuffers: GPUBuffer[] = [];

interface Case {
  name: string;
  pipeline: GPUComputePipeline;
  groups: GPUBindGroup[];
  workgroups: number;
}

async function run(c: Case): Promise<void> {
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(c.pipeline);
  for (const g of c.groups) {
    pass.setBindGroup(0, g);
    pass.dispatchWorkgroups(1, c.workgroups, 1);
  }
  pass.end();
  device.queue.submit([enc.finish()]);
  await device.queue.onSubmittedWorkDone();
}

const cases: Case[] = [];
for (const spec of arg('configs', '64x1').split(',')) {
  const [rows, colVecs] = spec.split('x').map(Number);
  const tileCols = 64 * colVecs;
  const windows = Math.ceil(K / windowK(16 * colVecs));
  if (N % tileCols !== 0 || rows % 16 !== 0) throw new Error(`${spec}: N must be a multiple of ${tileCols} and rows of 16`);
  while (windowBuffers.length < windows) windowBuffers.push(upload(Float32Array.from({ length: 16384 }, (_, i) => Math.cos(i + windowBuffers.length)), GPUBufferUsage.UNIFORM));
  const aLayout = { offset: 0, batchStride: 0, rowStride: K, colStride: 1 };
  const bLayout = { offset: 0, batchStride: 0, rowStride: 1, colStride: K };
  const params = Array.from({ length: N / tileCols }, (_, t) =>
    upload(matmulParams(M, N, K, aLayout, bLayout, 0, 0, { kStart: 0, kCount: K, col0: t * tileCols }), GPUBufferUsage.UNIFORM | GPUBufferUsage.STORAGE),
  );
  const config: MatmulKernelConfig = { variant: 'window', rows, colVecs, lanes: 16, a: 'k4', b: 'k4', windows, kTail: false, bias: false, gelu: false, residual: false, pre: false };
  for (const editName of arg('edits', '').split(',')) {
    const edit = EDITS[editName];
    if (!edit) throw new Error(`unknown edit '${editName}' (${Object.keys(EDITS).join(', ')})`);
    const code = edit(matmulKernel(config).source);
    if (process.argv.includes('--print')) {
      console.log(code);
      process.exit(0);
    }
    const t0 = performance.now();
    const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code }), entryPoint: 'main' } });
    const groups = params.map((p) =>
      device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [p, out, a, ...windowBuffers.slice(0, windows)].map((buffer, binding) => ({ binding, resource: { buffer } })),
      }),
    );
    const c: Case = { name: `${spec}${editName ? ` ${editName}` : ''}`, pipeline, groups, workgroups: Math.ceil(M / rows) };
    await run(c);
    console.log(`${c.name}: compile and first run ${(performance.now() - t0).toFixed(0)} ms`);
    cases.push(c);
  }
}

const times = new Map<Case, number[]>(cases.map((c) => [c, []]));
for (let r = 0; r < REPS; r++) {
  for (const c of cases) {
    const t = performance.now();
    await run(c);
    times.get(c)!.push(performance.now() - t);
  }
}
const flops = 2 * M * K * N;
console.log(`\n${M}×${K}×${N}, ${REPS} interleaved rounds, GFLOP/s`);
for (const [c, ts] of times) {
  ts.sort((x, y) => x - y);
  console.log(`${c.name.padEnd(20)} best ${(flops / ts[0] / 1e6).toFixed(1).padStart(6)}  median ${(flops / ts[ts.length >> 1] / 1e6).toFixed(1).padStart(6)}`);
}
