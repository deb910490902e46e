// The two peers the benchmark measures vitgpu against, loaded the way they run in Node: both on the
// `webgpu` package's navigator.gpu (Dawn), the same adapter vitgpu uses. Each peer also gets a tracker
// of the GPU bytes its live buffers hold, the analogue of vitgpu's pool statistics (see MemoryTracker).

import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { create, globals } from 'webgpu';
import { applyLavapipeVectorWidth, throttleDawnPolling } from '../engine/node.js';

export type Impl = 'vitgpu' | 'tfjs-webgpu' | 'jax-js';
export const IMPLS: readonly Impl[] = ['vitgpu', 'tfjs-webgpu', 'jax-js'];

export type Tfjs = typeof import('@tensorflow/tfjs-core');
export type Jax = typeof import('@jax-js/jax');

/**
 * Peak GPU bytes held by live (not pooled) buffers between start() and stop(), above what was live at
 * start(): the step's own working memory and outputs, its inputs excluded. Buffers a framework keeps in
 * a free list for reuse are not counted, for any implementation.
 */
export interface MemoryTracker {
  start(): void;
  /** The peak, or null when the implementation exposes nothing to measure it with. */
  stop(): number | null;
  /** How the number is obtained, for the report. */
  readonly source: string;
}

const require = createRequire(import.meta.url);

let gpu: GPU | null = null;

/** Dawn's GPU as navigator.gpu, as in a browser (the instance must stay referenced while in use). */
export function installNavigatorGpu(): GPU {
  if (gpu) return gpu;
  Object.assign(globalThis, globals);
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  // The same driver setup and event-loop wait as vitgpu's own devices (engine/node.ts): on lavapipe
  // the same vector width, and Dawn's waits without a spinning main thread.
  applyLavapipeVectorWidth();
  throttleDawnPolling();
  const adapter = process.env.VITGPU_ADAPTER;
  gpu = create(adapter ? [`adapter=${adapter}`] : []);
  const g = globalThis as unknown as { navigator?: Record<string, unknown> };
  // Node 20 has no navigator; Node 21+ has one without `gpu`.
  if (!g.navigator) g.navigator = {};
  Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true, writable: true });
  // jax-js reads navigator.userAgent (browser tuning) and fails when it is undefined.
  if (typeof g.navigator.userAgent !== 'string') {
    Object.defineProperty(g.navigator, 'userAgent', { value: `Node.js/${process.versions.node}`, configurable: true });
  }
  return gpu;
}

/** Description of the adapter the peers get from navigator.gpu (Dawn's default, or VITGPU_ADAPTER). */
export async function peerAdapterDescription(): Promise<string> {
  const adapter = await installNavigatorGpu().requestAdapter();
  const info = adapter?.info;
  if (!info) return 'no adapter';
  return [...new Set([info.vendor, info.architecture, info.device, info.description].filter((s) => s))].join(' / ');
}

function packageJson(path: string): { version: string } {
  return JSON.parse(readFileSync(path, 'utf8')) as { version: string };
}

/** Installed versions of the peer packages. */
export function peerVersions(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-webgpu']) {
    try {
      out[name] = packageJson(require.resolve(`${name}/package.json`)).version;
    } catch {
      out[name] = 'not installed';
    }
  }
  try {
    // jax-js's exports map hides package.json; it sits above dist/.
    out['@jax-js/jax'] = packageJson(join(dirname(require.resolve('@jax-js/jax')), '..', 'package.json')).version;
  } catch {
    out['@jax-js/jax'] = 'not installed';
  }
  return out;
}

// ---- tfjs-backend-webgpu ----

interface TfjsBufferManager {
  acquireBuffer(size: number, usage: number, ...rest: unknown[]): GPUBuffer;
  releaseBuffer(buffer: GPUBuffer, ...rest: unknown[]): void;
  freeBuffers: Map<string, GPUBuffer[]>;
}

export interface TfjsPeer {
  tf: Tfjs;
  memory: MemoryTracker;
}

/** Where buildTfjsBundle() writes: beside the compiled benchmark, under dist/. */
export const TFJS_BUNDLE = fileURLToPath(new URL('./tfjs-webgpu.bundle.mjs', import.meta.url));

/**
 * tfjs-core's Node build (CommonJS) leaves out the gradient registrations, and its ES-module build
 * cannot be loaded by Node directly (extensionless imports). The `@tensorflow/tfjs` package solves this
 * with a bundle that also brings layers, converter, data and WebGL (~240 MB installed); here esbuild
 * bundles just core's ES modules, its gradients and the WebGPU backend into one module (one copy of
 * tfjs, so one engine and one kernel registry).
 */
export async function buildTfjsBundle(): Promise<string> {
  const { build } = await import('esbuild');
  const root = dirname(require.resolve('@tensorflow/tfjs-core/package.json'));
  await build({
    stdin: {
      contents: [
        "export * from '@tensorflow/tfjs-core';",
        "import '@tensorflow/tfjs-core/dist/register_all_gradients';",
        "import '@tensorflow/tfjs-backend-webgpu';",
      ].join('\n'),
      resolveDir: root,
      loader: 'js',
    },
    bundle: true,
    platform: 'node',
    format: 'esm',
    mainFields: ['module', 'main'],
    outfile: TFJS_BUNDLE,
    logLevel: 'error',
    // tfjs's Node platform code calls require() (util, node-fetch); give the ES module one.
    banner: { js: "import { createRequire as __tfjsCreateRequire } from 'node:module'; const require = __tfjsCreateRequire(import.meta.url);" },
  });
  return TFJS_BUNDLE;
}

export async function loadTfjs(): Promise<TfjsPeer> {
  installNavigatorGpu();
  if (!existsSync(TFJS_BUNDLE)) await buildTfjsBundle();
  const tf = (await import(pathToFileURL(TFJS_BUNDLE).href)) as Tfjs;
  if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs: the webgpu backend failed to initialize');
  await tf.ready();
  const bm = (tf.backend() as unknown as { bufferManager?: TfjsBufferManager }).bufferManager;
  return { tf, memory: bm ? bufferManagerTracker(bm) : nullTracker('tfjs backend has no bufferManager') };
}

/** Counts the bytes of buffers tfjs's BufferManager hands out and takes back (its numBytesUsed). */
function bufferManagerTracker(bm: TfjsBufferManager): MemoryTracker {
  let on = false;
  let live = 0;
  let peak = 0;
  const acquire = bm.acquireBuffer.bind(bm);
  const release = bm.releaseBuffer.bind(bm);
  bm.acquireBuffer = (size, usage, ...rest) => {
    const buffer = acquire(size, usage, ...rest);
    if (on) peak = Math.max(peak, (live += size));
    return buffer;
  };
  bm.releaseBuffer = (buffer, ...rest) => {
    // BufferManager.releaseBuffer ignores calls while its free list is empty (after dispose()).
    if (on && bm.freeBuffers.size !== 0) live -= buffer.size;
    release(buffer, ...rest);
  };
  return {
    source: "tfjs-backend-webgpu BufferManager: bytes of acquired, not yet released buffers (numBytesUsed)",
    start() {
      on = true;
      live = 0;
      peak = 0;
    },
    stop() {
      on = false;
      return peak;
    },
  };
}

// ---- jax-js ----

interface JaxBackendProto {
  malloc(this: JaxBackendThis, size: number, initialData?: Uint8Array): number;
  decRef(this: JaxBackendThis, slot: number): void;
}
interface JaxBackendThis {
  buffers: Map<number, { allocatedSize: number; ref: number; size: number }>;
}

export interface JaxPeer {
  jax: Jax;
  memory: MemoryTracker;
}

export async function loadJax(): Promise<JaxPeer> {
  installNavigatorGpu();
  const jax = (await import('@jax-js/jax')) as Jax;
  const devices = await jax.init('webgpu');
  if (!devices.includes('webgpu')) throw new Error(`jax-js: no webgpu backend (available: ${devices.join(', ')})`);
  jax.defaultDevice('webgpu');
  let memory: MemoryTracker;
  try {
    memory = await jaxBackendTracker();
  } catch (err) {
    memory = nullTracker(`jax-js exposes no memory statistics (${(err as Error).message})`);
  }
  return { jax, memory };
}

/**
 * jax-js has no public memory statistics. Its WebGPU backend class (in a chunk of the package's dist/,
 * the module instance the library itself loads) allocates through malloc() and frees when decRef()
 * drops a slot to zero; counting those gives its live bytes.
 */
async function jaxBackendTracker(): Promise<MemoryTracker> {
  const dist = dirname(require.resolve('@jax-js/jax'));
  const chunk = readdirSync(dist).find((f) => /^webgpu-.*\.js$/.test(f));
  if (!chunk) throw new Error('its WebGPU backend module was not found');
  const mod = (await import(pathToFileURL(join(dist, chunk)).href)) as { WebGPUBackend?: { prototype: JaxBackendProto } };
  const proto = mod.WebGPUBackend?.prototype;
  if (!proto || typeof proto.malloc !== 'function' || typeof proto.decRef !== 'function') {
    throw new Error('its WebGPU backend has no malloc/decRef');
  }
  let on = false;
  let live = 0;
  let peak = 0;
  const malloc = proto.malloc;
  const decRef = proto.decRef;
  proto.malloc = function (this: JaxBackendThis, size, initialData) {
    const slot = malloc.call(this, size, initialData);
    if (on && size > 0) peak = Math.max(peak, (live += this.buffers.get(slot)?.allocatedSize ?? 0));
    return slot;
  };
  proto.decRef = function (this: JaxBackendThis, slot) {
    const entry = this.buffers.get(slot);
    decRef.call(this, slot);
    if (on && entry && entry.ref === 0 && entry.size > 0) live -= entry.allocatedSize;
  };
  return {
    source: 'jax-js WebGPUBackend: bytes of allocated, not yet freed slots (malloc/decRef counted by the benchmark)',
    start() {
      on = true;
      live = 0;
      peak = 0;
    },
    stop() {
      on = false;
      return peak;
    },
  };
}

function nullTracker(source: string): MemoryTracker {
  return { source, start() {}, stop: () => null };
}
