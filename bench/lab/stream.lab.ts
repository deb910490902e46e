// Streaming (pointwise) kernels on lavapipe: how the bytes per second of y = x·a + b depend on the
// shape of the per-thread work (one f32, a vec4, four f32s, a grid-stride loop) and the workgroup size.
// Raw WebGPU, configurations interleaved, minimum of REPS per round:
//
//   npx esbuild bench/lab/stream.lab.ts --bundle --platform=node --format=esm --packages=external \
//     --outfile=node_modules/.cache/vitgpu-lab/stream.lab.mjs && node node_modules/.cache/vitgpu-lab/stream.lab.mjs
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);
const N = 1 << 24;
const REPS = 5;
const ROUNDS = 3;

type Variant = { name: string; code: string; groups: number };
const hdr = (t: string) => `@group(0) @binding(0) var<storage, read> x: array<${t}>;
@group(0) @binding(1) var<storage, read_write> y: array<${t}>;`;
const grid = (threads: number, wg: number) => Math.ceil(threads / wg);
function variants(): Variant[] {
  const out: Variant[] = [];
  for (const wg of [64, 256]) {
    out.push({ name: `f32 wg${wg}`, groups: grid(N, wg), code: `${hdr('f32')}
@compute @workgroup_size(${wg}) fn main(@builtin(global_invocation_id) g: vec3<u32>) { let i = g.x + g.y * ${grid(N, wg) > 65535 ? 65535 * wg : 0}u; if (i < ${N}u) { y[i] = x[i] * 1.5 + 0.25; } }` });
  }
  const wg = 256;
  out.push({ name: 'vec4 wg256', groups: grid(N / 4, wg), code: `${hdr('vec4<f32>')}
@compute @workgroup_size(${wg}) fn main(@builtin(global_invocation_id) g: vec3<u32>) { let i = g.x; if (i < ${N / 4}u) { y[i] = x[i] * 1.5 + 0.25; } }` });
  out.push({ name: '4xf32 strided wg256', groups: grid(N / 4, wg), code: `${hdr('f32')}
@compute @workgroup_size(${wg}) fn main(@builtin(global_invocation_id) g: vec3<u32>) { let T = ${N / 4}u; let i = g.x; if (i < T) { for (var r = 0u; r < 4u; r++) { let j = i + r * T; y[j] = x[j] * 1.5 + 0.25; } } }` });
  for (const w of [64, 128, 512, 1024]) out.push({ name: `vec4 wg${w}`, groups: grid(N / 4, w), code: `${hdr('vec4<f32>')}
@compute @workgroup_size(${w}) fn main(@builtin(global_invocation_id) g: vec3<u32>) { let i = g.x; if (i < ${N / 4}u) { y[i] = x[i] * 1.5 + 0.25; } }` });
  out.push({ name: '2 vec4 strided wg256', groups: grid(N / 8, wg), code: `${hdr('vec4<f32>')}
@compute @workgroup_size(${wg}) fn main(@builtin(global_invocation_id) g: vec3<u32>) { let T = ${N / 8}u; let i = g.x; if (i < T) { y[i] = x[i] * 1.5 + 0.25; y[i + T] = x[i + T] * 1.5 + 0.25; } }` });
  return out;
}

const gpu = create([]);
const adapter = (await gpu.requestAdapter())!;
const device = await adapter.requestDevice({ requiredLimits: { maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize, maxBufferSize: adapter.limits.maxBufferSize } });
const x = device.createBuffer({ size: N * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
const y = device.createBuffer({ size: N * 4, usage: GPUBufferUsage.STORAGE });
device.queue.writeBuffer(x, 0, new Float32Array(N).fill(1));
const vs = variants().map((v) => {
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code: v.code }), entryPoint: 'main' } });
  const group = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [x, y].map((buffer, binding) => ({ binding, resource: { buffer } })) });
  const groups = v.groups > 65535 ? [65535, Math.ceil(v.groups / 65535)] : [v.groups, 1];
  return { ...v, pipeline, group, dims: groups, best: [] as number[] };
});
async function once(v: (typeof vs)[number]): Promise<number> {
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(v.pipeline);
  pass.setBindGroup(0, v.group);
  pass.dispatchWorkgroups(v.dims[0], v.dims[1]);
  pass.end();
  const t = performance.now();
  device.queue.submit([enc.finish()]);
  await device.queue.onSubmittedWorkDone();
  return performance.now() - t;
}
for (const v of vs) await once(v);
for (let r = 0; r < ROUNDS; r++) for (const v of vs) { let m = Infinity; for (let i = 0; i < REPS; i++) m = Math.min(m, await once(v)); v.best.push(m); }
for (const v of vs) console.log(`${v.name.padEnd(22)} ${v.best.map((ms) => `${((8 * N) / ms / 1e6).toFixed(2)} GB/s (${ms.toFixed(1)} ms)`).join('  ')}`);
process.exit(0);
