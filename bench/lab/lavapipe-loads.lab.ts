// Where a matmul's time goes on lavapipe: the cost of loads by where they come from, and the
// 'subgroup' matmul kernel (kernels/matmul-wgsl.ts) with its loads replaced, one part at a time, by
// arithmetic on the load index (so nothing is folded away), by L1-resident addresses, or by f16 pairs
// packed in u32s. Raw WebGPU (no engine), so each WGSL change is a string edit of the real kernel:
//
//   npx esbuild bench/lab/lavapipe-loads.lab.ts --bundle --platform=node --format=esm --packages=external \
//     --outfile=node_modules/.cache/vitgpu-lab/lavapipe-loads.lab.mjs && node node_modules/.cache/vitgpu-lab/lavapipe-loads.lab.mjs
//
// Arguments (optional): --reps 4  --blocks 32x1,64x2 (rows × column vec4s of the matmul kernel).
// Results of a quiet run are in bench/RESULTS.md ("Speed work: what was tried").

import { loadavg } from 'node:os';
import { create, globals } from 'webgpu';
import { matmulKernel, matmulParams } from '../../kernels/matmul-wgsl.js';
import type { MatmulKernelConfig } from '../../kernels/matmul-plan.js';
import { f32ToF16 } from '../../models/half.js';

Object.assign(globalThis, globals);

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const REPS = Number(arg('reps', '4'));

async function timeIt(device: GPUDevice, dispatch: (pass: GPUComputePassEncoder) => void): Promise<number> {
  const run = async () => {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    dispatch(pass);
    pass.end();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
  };
  await run(); // compile
  const times: number[] = [];
  for (let i = 0; i < REPS; i++) {
    const t = performance.now();
    await run();
    times.push(performance.now() - t);
  }
  return Math.min(...times);
}

function pipelineFor(device: GPUDevice, code: string, buffers: GPUBuffer[]): { pipeline: GPUComputePipeline; group: GPUBindGroup } {
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code }), entryPoint: 'main' } });
  const group = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })) });
  return { pipeline, group };
}

function upload(device: GPUDevice, data: ArrayBufferView, usage = GPUBufferUsage.STORAGE): GPUBuffer {
  const b = device.createBuffer({ size: Math.max(16, data.byteLength), usage: usage | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength);
  return b;
}

/** Part 1: lane-varying loads from a storage buffer, a workgroup array and a private array. */
async function loads(device: GPUDevice): Promise<void> {
  const WG = 512, ITER = 256, LOADS = 4;
  const src = upload(device, new Float32Array(1024 * 1024 * 4));
  const out = device.createBuffer({ size: WG * 8 * 16, usage: GPUBufferUsage.STORAGE });
  const kinds: Record<string, { decl: string; pre: string; load: (r: string, c: string) => string }> = {
    'storage vec4': { decl: 'var<storage, read> src: array<vec4<f32>>;', pre: '', load: (r, c) => `src[${r} * 1024u + ${c}]` },
    'storage f32': { decl: 'var<storage, read> src: array<f32>;', pre: '', load: (r, c) => `vec4<f32>(src[${r} * 1024u + ${c}])` },
    'workgroup vec4': {
      decl: 'var<storage, read> src: array<vec4<f32>>;\nvar<workgroup> sh: array<vec4<f32>, 1024>;',
      pre: 'sh[li] = src[li]; workgroupBarrier();',
      load: (r, c) => `sh[(${r} * 64u + ${c}) & 1023u]`,
    },
    'private vec4': {
      decl: 'var<storage, read> src: array<vec4<f32>>;',
      pre: 'var pa: array<vec4<f32>, 64>; for (var j = 0u; j < 64u; j++) { pa[j] = src[j * 8u + li]; }',
      load: (r, c) => `pa[(${r} + ${c}) & 63u]`,
    },
  };
  console.log('\nloads: 8 lanes, each a different address (G loads per second, one vec4 or one f32 each)');
  for (const [name, k] of Object.entries(kinds)) {
    const code = `@group(0) @binding(0) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(1) ${k.decl}
@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  ${k.pre}
  var acc = vec4<f32>();
  let col = (wid.x * 8u + li) % 256u;
  for (var i = 0u; i < ${ITER}u; i++) {
    let r = (i + wid.x) % 1024u;
    ${Array.from({ length: LOADS }, (_, j) => `acc += ${k.load('r', `(col + ${j * 256}u)`)};`).join('\n    ')}
  }
  out[wid.x * 8u + li] = acc;
}`;
    const { pipeline, group } = pipelineFor(device, code, [out, src]);
    const ms = await timeIt(device, (p) => {
      p.setPipeline(pipeline);
      p.setBindGroup(0, group);
      p.dispatchWorkgroups(WG);
    });
    console.log(`  ${name.padEnd(16)} ${(WG * 8 * ITER * LOADS / ms / 1e6).toFixed(2)}`);
  }
}

/** Part 2: the matmul kernel of an MLP fc2 product (1576×3072 · 3072×768, W stored [N, K]) with edits. */
async function matmul(device: GPUDevice): Promise<void> {
  const M = 1576, K = 3072, N = 768;
  const a = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i) * 0.5);
  const b = Float32Array.from({ length: N * K }, (_, i) => Math.cos(i) * 0.5);
  const half = (x: Float32Array) => Uint16Array.from(x, (v) => f32ToF16(v));
  const f32 = [upload(device, a), upload(device, b)];
  const f16 = [upload(device, half(a)), upload(device, half(b))];
  const out = device.createBuffer({ size: M * N * 4, usage: GPUBufferUsage.STORAGE });
  const params = upload(device, matmulParams(M, N, K, { offset: 0, batchStride: 0, rowStride: K, colStride: 1 }, { offset: 0, batchStride: 0, rowStride: 1, colStride: K }), GPUBufferUsage.UNIFORM);
  // Arithmetic on the load index instead of a load: distinct values per row and lane, nothing to fold.
  const FAKE = 'fn fk(i: u32) -> vec4<f32> { let j = i & 1023u; return vec4<f32>(f32(j), f32(j ^ 5u), f32(j + 3u), f32(j >> 1u)) * 1e-3; }\n';
  const keepBindings = (src: string) => src.replace('var tile:', 'if (K == 1u) { acc0_0 += a[0] + b[0]; }\n  var tile:');
  const edits: Record<string, (src: string) => string> = {
    'as is': (s) => s,
    'A loads faked': (s) => keepBindings(FAKE + s.replace(/= a\[([^\]]+)\];/g, '= fk($1);')),
    'B loads faked': (s) => keepBindings(FAKE + s.replace(/= b\[([^\]]+)\];/g, '= fk($1);')),
    'A and B faked': (s) => keepBindings(FAKE + s.replace(/= ([ab])\[([^\]]+)\];/g, '= fk($2);')),
    'L1-resident': (s) => s.replace(/= ([ab])\[([^\]]+) \+ k4\];/g, '= $1[$2 + (k4 & 3u)];'),
    'f16 pairs in u32': (s) =>
      'fn up(v: vec2<u32>) -> vec4<f32> { return vec4<f32>(unpack2x16float(v.x), unpack2x16float(v.y)); }\n' +
      s.replace(/var<storage, read> ([ab]): array<vec4<f32>>/g, 'var<storage, read> $1: array<vec2<u32>>').replace(/= ([ab])\[([^\]]+)\];/g, '= up($1[$2]);'),
  };
  const flops = 2 * M * K * N;
  console.log(`\nmatmul ${M}×${K}×${N} (A [M, K], B = Wᵀ with W [N, K]), GFLOP/s of the best of ${REPS}`);
  for (const block of arg('blocks', '32x1,64x2').split(',')) {
    const [rows, colVecs] = block.split('x').map(Number);
    const c: MatmulKernelConfig = { variant: 'subgroup', rows, colVecs, lanes: 8, a: 'k4', b: 'k4', kTail: false, bias: false, gelu: false, residual: false, pre: false };
    const base = matmulKernel(c).source;
    const line: string[] = [];
    for (const [name, edit] of Object.entries(edits)) {
      const [ab, bb] = name.startsWith('f16') ? f16 : f32;
      const { pipeline, group } = pipelineFor(device, edit(base), [params, out, ab, bb]);
      const ms = await timeIt(device, (p) => {
        p.setPipeline(pipeline);
        p.setBindGroup(0, group);
        p.dispatchWorkgroups(Math.ceil(N / (32 * colVecs)), Math.ceil(M / rows), 1);
      });
      line.push(`${name} ${(flops / ms / 1e6).toFixed(1)}`);
    }
    console.log(`  ${rows} rows × ${colVecs * 32} cols: ${line.join(' | ')}`);
  }
}

async function main(): Promise<void> {
  // Keep the GPU instance referenced: once it is garbage-collected, Dawn tears the device down and
  // the process exits silently in the middle of a wait.
  const gpu = create([]);
  (globalThis as { vitgpuLabGpu?: unknown }).vitgpuLabGpu = gpu;
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new Error('no WebGPU adapter');
  const device = await adapter.requestDevice({ requiredFeatures: ['subgroups'] as GPUFeatureName[] });
  console.log(`adapter: ${adapter.info.vendor} / ${adapter.info.architecture} / ${adapter.info.description}; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  await loads(device);
  await matmul(device);
  process.exit(0);
}

void main();
