/// <reference types="@webgpu/types" preserve="true" />
// The Node-only entry: creates devices through Dawn (the `webgpu` npm package) and gives file access
// (random-access reads, atomic writes). Nothing else in engine/, kernels/ or models/ imports Node; a
// browser bundle never reaches this file.

import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { create, globals } from 'webgpu';
import { createDevice, type Device, type DeviceOptions } from './device.js';
import { LINUX_ADAPTER_HELP, NoAdapterError, VitgpuError } from './errors.js';
import { resolveTunePolicy, startNodeTuning, type TuneSetting } from './tune-node.js';

export * from './index.js';
export * from './files-node.js';
export * from './tune-node.js';

let globalsInstalled = false;
// Dawn's GPU instances live as long as the process: one per set of flags, made once, never dropped.
// An instance that is garbage-collected tears down its Vulkan instance under the devices of the
// others: the next submit or map of a live device then aborts the process (std::system_error
// "Invalid argument", or SIGSEGV; lavapipe and SwiftShader alike), seen after listAdapters, a
// NoAdapterError or a destroyed device once the collector ran (test/engine/instances.test.ts).
const instances = new Map<string, GPU>();

/** Dawn's instance for these flags, created at the first call and kept for the process's lifetime. */
function dawnInstance(flags: string[]): GPU {
  const key = flags.join('\n');
  let gpu = instances.get(key);
  if (!gpu) {
    gpu = create(flags);
    instances.set(key, gpu);
  }
  return gpu;
}

function installGlobals(): void {
  if (globalsInstalled) return;
  // Dawn's GPUBufferUsage, GPUMapMode, ... as in a browser.
  Object.assign(globalThis, globals);
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  applyLavapipeVectorWidth();
  throttleDawnPolling();
  globalsInstalled = true;
}

let pollingThrottled = false;

/** VITGPU_DAWN_POLL: 'throttle' (the default, also when unset) or 'spin'; anything else is refused. */
export function dawnPollMode(): 'throttle' | 'spin' {
  const v = process.env.VITGPU_DAWN_POLL ?? '';
  if (v === '' || v === 'throttle' || v === 'spin') return v === 'spin' ? 'spin' : 'throttle';
  throw new VitgpuError(`VITGPU_DAWN_POLL must be one of throttle (the default), spin, got "${v}"`);
}

/**
 * Dawn's Node binding resolves its promises (mapAsync, onSubmittedWorkDone, requestDevice) by
 * re-queueing a native `setImmediate` callback that processes events for as long as one is pending,
 * so the main thread spins at 100% of a core while the GPU works. On lavapipe that core is taken from
 * the driver's own threads: with 2 cores, a 1024³ matmul loop spent 790 ms of the main thread's CPU in
 * 1212 ms of wall time; with this, 130 ms of CPU and 840 ms of wall time (bench/RESULTS.md). Here, after
 * 4 immediate ticks in a row, each further tick of that chain waits 1 ms (setTimeout), so the main
 * thread sleeps between them; a short wait still resolves at once. Dawn's ticks are told apart by
 * being anonymous native functions queued from inside the timer loop itself (no JavaScript caller);
 * every other setImmediate goes through unchanged. `VITGPU_DAWN_POLL=spin` keeps Dawn's own loop
 * (`throttle`, the default, this one).
 * Called by createNodeDevice and listAdapters, and by the benchmark for the peers' Dawn.
 */
export function throttleDawnPolling(): void {
  if (dawnPollMode() === 'spin' || pollingThrottled) return;
  pollingThrottled = true;
  const original = globalThis.setImmediate;
  const nativeSource = Function.prototype.toString;
  let streak = 0;
  const throttled = function setImmediate(this: unknown, fn: (...a: unknown[]) => void, ...args: unknown[]) {
    if (typeof fn === 'function' && fn.name === '' && nativeSource.call(fn).includes('[native code]')) {
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = 3;
      const caller = new Error().stack?.split('\n')[2] ?? '';
      Error.stackTraceLimit = limit;
      if (/\b(processImmediate|listOnTimeout)\b/.test(caller)) {
        if (++streak > 4) return setTimeout(fn, 1, ...args);
      } else {
        streak = 0;
      }
    }
    return (original as (f: unknown, ...a: unknown[]) => NodeJS.Immediate).call(this, fn, ...args);
  };
  Object.defineProperties(throttled, Object.getOwnPropertyDescriptors(original));
  globalThis.setImmediate = throttled as typeof globalThis.setImmediate;
}

/**
 * Sets LP_NATIVE_VECTOR_WIDTH for this process as lavapipeVectorWidth() says. It must run before the
 * first Dawn instance of the process (the driver reads it once, when it loads); createNodeDevice and
 * listAdapters call it, and so does the benchmark before it starts the peers' Dawn.
 */
export function applyLavapipeVectorWidth(): void {
  const width = lavapipeVectorWidth(process.env, cpuFlags());
  if (width) process.env.LP_NATIVE_VECTOR_WIDTH = width;
}

/** The CPU's feature flags (Linux /proc/cpuinfo), empty where they can't be read. */
function cpuFlags(): Set<string> {
  if (process.platform !== 'linux') return new Set();
  try {
    const line = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return new Set(line ? line[1].trim().split(/\s+/) : []);
  } catch {
    return new Set();
  }
}

/**
 * The LP_NATIVE_VECTOR_WIDTH to give Mesa's CPU drivers (lavapipe, llvmpipe) before Dawn loads them,
 * or null to leave it alone. They compile shaders for 256-bit vectors (8 lanes per subgroup) even on
 * CPUs with AVX-512; at 512 bits a subgroup has 16 lanes and 32 vector registers instead of 16, and the
 * matmul kernels, which are bound by lavapipe's per-lane loads and register spills, run about 1.3-1.5x
 * faster (bench/RESULTS.md). A width the user set (LP_NATIVE_VECTOR_WIDTH=256 is Mesa's default
 * back) is kept, and a CPU without AVX-512 F/BW/DQ/VL gets Mesa's default. Other drivers ignore it.
 */
export function lavapipeVectorWidth(env: Record<string, string | undefined>, flags: ReadonlySet<string>): string | null {
  if (env.LP_NATIVE_VECTOR_WIDTH) return null;
  const avx512 = ['avx512f', 'avx512bw', 'avx512dq', 'avx512vl'].every((f) => flags.has(f));
  return avx512 ? '512' : null;
}

/**
 * Runs `fn` (a Dawn requestAdapter call) with file descriptor 2 pointed at /dev/null.
 *
 * When a Dawn instance first looks for adapters, Dawn clamps the Vulkan driver's dynamic-buffer counts
 * (lavapipe and most desktop drivers report 500,000 or more) to its own 16 and prints
 * "Warning: maxDynamic{Uniform,Storage}BuffersPerPipelineLayout artificially reduced ..." from native
 * code straight to fd 2, on every command. vitgpu requests neither limit (nothing to change in the
 * limits it asks for); the clamp is harmless and happens synchronously inside requestAdapter().
 * Node has no dup2, so fd 2 is closed and /dev/null opened in its place (open takes the lowest free
 * descriptor), then the original is reopened through /proc/self/fd. Only where that is safe: Linux,
 * stderr a terminal or a pipe (a reopened regular file would not share the shell's offset, so log
 * files keep the two lines). VITGPU_DAWN_LOG=1 leaves Dawn's messages alone.
 */
function withoutDawnAdapterLog<T>(fn: () => T): T {
  if (process.platform !== 'linux' || process.env.VITGPU_DAWN_LOG) return fn();
  let saved: number;
  try {
    const st = fstatSync(2);
    if (!st.isFIFO() && !st.isCharacterDevice()) return fn();
    saved = openSync('/proc/self/fd/2', 'w');
  } catch {
    return fn();
  }
  let silenced = false;
  try {
    closeSync(2);
    const nul = openSync('/dev/null', 'w');
    silenced = nul === 2;
    if (!silenced) closeSync(nul); // fd 0 or 1 was free: restore below without running silenced
  } catch {
    // fall through to the restore
  }
  try {
    return fn();
  } finally {
    try {
      if (silenced) closeSync(2);
      openSync(`/proc/self/fd/${saved}`, 'w'); // takes descriptor 2 again
    } finally {
      closeSync(saved);
    }
  }
}

/** The GPU object Dawn gives, with adapter discovery made quiet (see withoutDawnAdapterLog). */
function quietGpu(gpu: GPU): GPU {
  return new Proxy(gpu, {
    get(target, key) {
      if (key === 'requestAdapter') return (options?: GPURequestAdapterOptions) => withoutDawnAdapterLog(() => target.requestAdapter(options));
      const v = Reflect.get(target, key, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

export interface NodeDeviceOptions extends DeviceOptions {
  /** Dawn backend to use (`vulkan`, `metal`, `d3d12`, `opengl`, ...). Also `VITGPU_BACKEND`. */
  backend?: string;
  /** Kernel autotuning: 'off', 'cached' (the default) or 'full'; also `VITGPU_TUNE` (engine/tune-node.ts). */
  tune?: TuneSetting;
}

export interface AdapterSummary {
  backend: string;
  name: string;
}

function dawnFlags(adapter: string | undefined, backend: string | undefined): string[] {
  const flags: string[] = [];
  if (adapter) flags.push(`adapter=${adapter}`);
  if (backend) flags.push(`dawn-backend=${backend}`);
  return flags;
}

function parseAvailable(message: string): AdapterSummary[] {
  const out: AdapterSummary[] = [];
  for (const m of message.matchAll(/backend: '([^']*)', name: '([^']*)'/g)) out.push({ backend: m[1], name: m[2] });
  return out;
}

/** The adapters Dawn can see, by backend and name. */
export async function listAdapters(): Promise<AdapterSummary[]> {
  installGlobals();
  // Dawn lists every adapter in the error for an adapter name that matches none.
  try {
    await quietGpu(dawnInstance(['adapter=\u0001no-such-adapter'])).requestAdapter();
  } catch (err) {
    const found = parseAvailable(String((err as Error).message ?? err));
    if (found.length) return found;
  }
  const adapter = await quietGpu(dawnInstance([])).requestAdapter();
  return adapter ? [{ backend: 'default', name: adapter.info?.description || adapter.info?.device || 'adapter' }] : [];
}

/**
 * A vitgpu Device on Dawn. The adapter is chosen by `options.adapter` or `VITGPU_ADAPTER` (a
 * case-insensitive substring of its name), else Dawn's default.
 */
export async function createNodeDevice(options: NodeDeviceOptions = {}): Promise<Device> {
  // A bad policy (VITGPU_TUNE) fails before Dawn starts: a process that exits with a live Dawn
  // instance can die of a signal instead of returning its exit code.
  resolveTunePolicy(options.tune);
  dawnPollMode();
  installGlobals();
  const adapterName = options.adapter ?? (process.env.VITGPU_ADAPTER || undefined);
  const backend = options.backend ?? (process.env.VITGPU_BACKEND || undefined);
  const gpu = dawnInstance(dawnFlags(adapterName, backend));
  try {
    // Dawn does its own name matching; don't match again against a differently formatted name.
    const device = await createDevice(quietGpu(gpu), { ...options, adapter: undefined, noAdapterHelp: LINUX_ADAPTER_HELP });
    try {
      startNodeTuning(device, options.tune);
    } catch (err) {
      device.destroy();
      throw err;
    }
    return device;
  } catch (err) {
    const message = String((err as Error).message ?? err);
    if (err instanceof NoAdapterError) throw err;
    if (/no suitable backends|adapter/i.test(message)) {
      const found = parseAvailable(message);
      const list = found.length ? found.map((a) => `  ${a.backend}: ${a.name}`).join('\n') : '  (none)';
      const what = [adapterName && `adapter "${adapterName}"`, backend && `backend "${backend}"`].filter(Boolean).join(' and ');
      throw new NoAdapterError(
        found.length ? `No WebGPU adapter matches ${what || 'the request'}. Available adapters:\n${list}` : LINUX_ADAPTER_HELP,
      );
    }
    throw err;
  }
}

/** A file opened for random access (structurally a models/safetensors.ts ByteSource). */
