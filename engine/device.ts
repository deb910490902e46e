// The engine's handle on one GPUDevice: adapter choice and report, the buffer pool, the pipeline cache,
// and command batching. Browser-safe: it is handed a `GPU` object (navigator.gpu, or Dawn's in Node by
// engine/node.ts) and imports nothing from Node.

import { BufferPool, BufferUsage, type MemoryStats, type PooledBuffer, type UniformWindow, sizeClass } from './buffer-pool.js';
import { describeAdapterInfo, envValue, isCpuAdapterInfo, type DeviceInfo } from './adapter-info.js';
import { DerivedCache, derivedBudget } from './derived.js';
import { BROWSER_ADAPTER_HELP, DeviceLostError, GpuError, NoAdapterError, VitgpuError } from './errors.js';
import { Profiler, type KernelWork, type ProfileOptions, type ProfileSession } from './profiler.js';

export interface DeviceOptions {
  /** Pick the adapter whose name contains this (case-insensitive). In Node also `VITGPU_ADAPTER`. */
  adapter?: string;
  powerPreference?: GPUPowerPreference;
  forceFallbackAdapter?: boolean;
  /** Released buffer bytes kept for reuse before buffers are destroyed instead. */
  maxPooledBytes?: number;
  /** Message for "no adapter" (Node passes the Linux driver recipe; the default suits a browser). */
  noAdapterHelp?: string;
  /** Optional features not to request even where offered (e.g. ['timestamp-query'] to test without). */
  withoutFeatures?: readonly string[];
  /** Print each kernel's WGSL when its pipeline is first built: true, or a kernel-name substring. */
  debugWgsl?: boolean | string;
  /**
   * Bytes kept of buffers derived from unchanged ones (packed matmul weights, engine/derived.ts); 0
   * keeps none. Default: VITGPU_DERIVED_MB MiB, else 1 GiB.
   */
  maxDerivedBytes?: number;
}

/** What the device needs of a kernel to build and launch it (kernels/wgsl.ts makes them). */
export interface KernelSource {
  /** Human-readable name used in errors, debug output and benchmarks. */
  readonly name: string;
  /** Final WGSL source; also the pipeline-cache key. */
  readonly source: string;
  /** Number of u32 words in the params block (binding 0). */
  readonly paramWords: number;
}

/** Subgroup sizes the adapter guarantees (WebGPU's subgroupMinSize and subgroupMaxSize). */
export interface SubgroupSizes {
  minSize: number;
  maxSize: number;
}

export { describeAdapterInfo, envValue, isCpuAdapterInfo, type DeviceInfo } from './adapter-info.js';

/** Optional features worth having, requested whenever the adapter offers them. */
export const WANTED_FEATURES = ['shader-f16', 'subgroups', 'timestamp-query'] as const;

/** Limits raised to the adapter's maximum (defaults are far below what ViT-B activations need). */
const RAISED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxUniformBuffersPerShaderStage',
] as const;

const REPORTED_LIMITS = [...RAISED_LIMITS, 'maxUniformBufferBindingSize', 'minUniformBufferOffsetAlignment'] as const;

export async function createDevice(gpu: GPU | undefined | null, options: DeviceOptions = {}): Promise<Device> {
  if (!gpu) {
    throw new NoAdapterError(
      'WebGPU is not available here (no navigator.gpu). Use a browser with WebGPU enabled ' +
        '(Chrome/Edge 113+, or Chromium with --enable-unsafe-webgpu), or Node with the `webgpu` package.',
    );
  }
  const adapter = await gpu.requestAdapter({
    powerPreference: options.powerPreference,
    forceFallbackAdapter: options.forceFallbackAdapter,
  });
  if (!adapter) throw new NoAdapterError(options.noAdapterHelp ?? BROWSER_ADAPTER_HELP);
  const name = describeAdapterInfo(adapter.info);
  if (options.adapter && !name.toLowerCase().includes(options.adapter.toLowerCase())) {
    throw new NoAdapterError(`No adapter matches "${options.adapter}"; this one is available: ${name}`);
  }

  const features = WANTED_FEATURES.filter((f) => adapter.features.has(f) && !options.withoutFeatures?.includes(f));
  const requiredLimits: Record<string, number> = {};
  for (const key of RAISED_LIMITS) {
    const v = (adapter.limits as unknown as Record<string, number>)[key];
    if (typeof v === 'number') requiredLimits[key] = v;
  }
  const gpuDevice = await adapter.requestDevice({
    label: 'vitgpu',
    requiredFeatures: features as GPUFeatureName[],
    requiredLimits,
  });
  const limits: Record<string, number> = {};
  for (const key of REPORTED_LIMITS) {
    limits[key] = (gpuDevice.limits as unknown as Record<string, number>)[key];
  }
  const info: DeviceInfo = {
    vendor: adapter.info?.vendor ?? '',
    architecture: adapter.info?.architecture ?? '',
    device: adapter.info?.device ?? '',
    description: adapter.info?.description ?? '',
    isFallbackAdapter: Boolean((adapter.info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter),
    features: [...features],
    limits,
  };
  return new Device(gpuDevice, info, options);
}

const UNIFORM_RING_BYTES = 256 * 1024;

/**
 * One GPUDevice and everything the engine keeps per device. Kernels are recorded into one command
 * encoder and submitted together at `flush()` (called by reads, by uploads that must see earlier work,
 * and when the uniform ring fills), instead of one submission per op. The tensor-creating methods
 * (device.tensor, zeros, ones, full, randn, rand, arange) are attached by engine/ops/index.ts.
 */
export class Device {
  readonly pool: BufferPool;
  /** Buffers derived from others while those are unchanged (engine/derived.ts); told of every write. */
  readonly derived: DerivedCache;
  /** The adapter is a CPU (software rasterizer or fallback): kernels pick CPU-friendly variants. */
  readonly isCpuAdapter: boolean;
  /** The subgroup sizes when the device has the 'subgroups' feature, else null (sizes 0 when unreported). */
  readonly subgroups: SubgroupSizes | null;
  /** Incremented at every submission; buffers remember the batch that last bound them. */
  batchId = 0;
  debugWgsl: boolean | string;
  /** Seed state for random ops called without an explicit seed. */
  private rngCounter = 0;
  private rngSeed = 0x5eed;

  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  /** Per kernel source, the bindings it declares read_write (writes the derived cache must hear of). */
  private readonly writableBindings = new Map<string, number[]>();
  private readonly uniformAlign: number;
  private readonly uniformRing: GPUBuffer;
  private readonly uniformStaging: Uint32Array;
  private uniformUsed = 0;
  private dispatchesInBatch = 0;
  private readonly recentKernels: string[] = [];
  private readonly errors: string[] = [];
  /** Pipeline-compilation checks still in flight; reads wait for them before reporting health. */
  private readonly pendingChecks = new Set<Promise<void>>();
  private lostError: DeviceLostError | null = null;
  private readonly lostPromise: Promise<DeviceLostError>;
  private readonly readbackFree = new Map<number, GPUBuffer[]>();
  private destroyed = false;
  private readonly destroyHooks: (() => void)[] = [];
  /** The running profile, or null: when null, dispatch records no pass, query or read of its own. */
  private profiler: Profiler | null = null;
  /** Run once at the next read or sync, after its wait (the autotuner's queued timings: kernels/tune.ts). */
  idleWork: (() => Promise<void>) | null = null;

  constructor(readonly gpu: GPUDevice, readonly info: DeviceInfo, options: DeviceOptions = {}) {
    this.pool = new BufferPool(gpu, options.maxPooledBytes);
    this.derived = new DerivedCache(this, derivedBudget(options.maxDerivedBytes));
    this.isCpuAdapter = isCpuAdapterInfo(info);
    const ai = (gpu as { adapterInfo?: { subgroupMinSize?: number; subgroupMaxSize?: number } }).adapterInfo;
    this.subgroups = info.features.includes('subgroups') ? { minSize: ai?.subgroupMinSize ?? 0, maxSize: ai?.subgroupMaxSize ?? 0 } : null;
    this.debugWgsl = options.debugWgsl ?? envValue('VITGPU_DEBUG_WGSL') ?? false;
    if (this.debugWgsl === '1' || this.debugWgsl === 'true') this.debugWgsl = true;
    this.uniformAlign = Math.max(16, gpu.limits.minUniformBufferOffsetAlignment ?? 256);
    this.uniformRing = gpu.createBuffer({
      label: 'vitgpu params ring',
      size: UNIFORM_RING_BYTES,
      usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST,
    });
    this.uniformStaging = new Uint32Array(UNIFORM_RING_BYTES / 4);
    this.lostPromise = gpu.lost.then((lost) => {
      this.lostError = new DeviceLostError(
        this.destroyed ? 'destroyed' : String(lost.reason ?? 'unknown'),
        lost.message ?? '',
      );
      return this.lostError;
    });
    const onError = (event: Event) => {
      const err = (event as GPUUncapturedErrorEvent).error;
      const kernels = this.recentKernels.length ? ` (recent kernels: ${this.recentKernels.join(', ')})` : '';
      this.errors.push(`${err?.message ?? String(err)}${kernels}`);
    };
    if (typeof gpu.addEventListener === 'function') gpu.addEventListener('uncapturederror', onError);
    else (gpu as { onuncapturederror: unknown }).onuncapturederror = onError;
  }

  /** One-line description of the adapter. */
  get name(): string {
    return describeAdapterInfo(this.info as unknown as GPUAdapterInfo);
  }

  get lost(): boolean {
    return this.lostError !== null;
  }

  /** Sets the seed used by random ops that are given no explicit seed. */
  manualSeed(seed: number): void {
    this.rngSeed = seed >>> 0;
    this.rngCounter = 0;
  }

  /** A fresh (seed, stream) pair for a random op without an explicit seed. */
  nextRandomStream(): [number, number] {
    return [this.rngSeed, this.rngCounter++];
  }

  memory(): MemoryStats {
    return { ...this.pool.stats(), derivedBytes: this.derived.stats().keptBytes };
  }

  /** Starts peakBytes again from the bytes live now (to measure one piece of work). */
  resetPeakMemory(): void {
    this.pool.resetPeak();
  }

  /** Throws if the device is lost or WebGPU reported errors for earlier work. */
  checkHealthy(): void {
    if (this.lostError) throw this.lostError;
    if (this.errors.length) {
      const msgs = this.errors.splice(0);
      throw new GpuError(`WebGPU reported ${msgs.length} error(s):\n  ${msgs.join('\n  ')}`);
    }
  }

  /** A storage buffer for a kernel to write (may be one released during the current batch). */
  allocate(bytes: number): PooledBuffer {
    this.checkHealthy();
    return this.pool.acquire(bytes);
  }

  /** A storage buffer holding `data`, written through the queue. */
  upload(data: ArrayBufferView): PooledBuffer {
    this.checkHealthy();
    // Only a buffer not bound by unsubmitted work may be written by the queue (see buffer-pool.ts).
    const pb = this.pool.acquire(Math.max(4, data.byteLength), this.batchId);
    if (data.byteLength > 0) {
      this.gpu.queue.writeBuffer(pb.buffer, 0, data.buffer, data.byteOffset, Math.ceil(data.byteLength / 4) * 4);
    }
    return pb;
  }

  /** Writes `data` into `pb` at `byteOffset` through the queue, after submitting the work recorded so far. */
  write(pb: PooledBuffer, byteOffset: number, data: ArrayBufferView): void {
    this.checkHealthy();
    // Queue writes run before unsubmitted work: submit what may still read the old values first.
    this.flush();
    this.derived.written(pb);
    this.gpu.queue.writeBuffer(pb.buffer, byteOffset, data.buffer, data.byteOffset, data.byteLength);
  }

  release(pb: PooledBuffer): void {
    this.derived.written(pb);
    this.pool.release(pb);
  }

  pipeline(kernel: KernelSource): GPUComputePipeline {
    let p = this.pipelines.get(kernel.source);
    if (p) return p;
    if (this.debugWgsl === true || (typeof this.debugWgsl === 'string' && kernel.name.includes(this.debugWgsl))) {
      console.error(`// ---- vitgpu kernel ${kernel.name} ----\n${kernel.source}`);
    }
    this.gpu.pushErrorScope('validation');
    const module = this.gpu.createShaderModule({ label: kernel.name, code: kernel.source });
    p = this.gpu.createComputePipeline({ label: kernel.name, layout: 'auto', compute: { module, entryPoint: 'main' } });
    const check = this.gpu.popErrorScope().then((err) => {
      if (err) this.errors.unshift(`kernel ${kernel.name} failed to compile: ${err.message}`);
      this.pendingChecks.delete(check);
    });
    this.pendingChecks.add(check);
    this.pipelines.set(kernel.source, p);
    this.writableBindings.set(kernel.source, [...kernel.source.matchAll(/@binding\((\d+)\)\s*var<storage,\s*read_write>/g)].map((m) => Number(m[1])));
    return p;
  }

  /** Number of distinct pipelines built so far (one per distinct WGSL source). */
  get pipelineCount(): number {
    return this.pipelines.size;
  }

  /**
   * Records one dispatch: `params` goes to binding 0, `buffers` to bindings 1..n. Buffers may be
   * PooledBuffers (marked as used by this batch), or windows of them bound as uniform buffers.
   */
  dispatch(kernel: KernelSource, buffers: readonly (PooledBuffer | UniformWindow)[], params: Uint32Array, workgroups: readonly number[], work?: KernelWork): void {
    this.checkHealthy();
    const profiler = this.profiler;
    if (profiler?.full) this.flush();
    const paramBytes = Math.max(16, Math.ceil((kernel.paramWords * 4) / 16) * 16);
    if (params.length > kernel.paramWords) {
      throw new GpuError(`kernel ${kernel.name}: ${params.length} param words passed, ${kernel.paramWords} declared`);
    }
    const slot = Math.ceil(paramBytes / this.uniformAlign) * this.uniformAlign;
    if (this.uniformUsed + slot > UNIFORM_RING_BYTES) this.flush();
    const offset = this.uniformUsed;
    this.uniformStaging.fill(0, offset / 4, (offset + paramBytes) / 4);
    this.uniformStaging.set(params, offset / 4);
    this.uniformUsed += slot;

    const pipeline = this.pipeline(kernel);
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: this.uniformRing, offset, size: paramBytes } }];
    if (this.derived.active) {
      for (const i of this.writableBindings.get(kernel.source) ?? []) {
        const b = buffers[i - 1];
        if (b && !('window' in b)) this.derived.written(b);
      }
    }
    buffers.forEach((b, i) => {
      const pb = 'window' in b ? b.window : b;
      pb.lastBatch = this.batchId;
      entries.push({ binding: i + 1, resource: 'window' in b ? { buffer: pb.buffer, offset: b.offset, size: b.size } : { buffer: pb.buffer } });
    });
    const bindGroup = this.gpu.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    // Profiled, each dispatch gets a pass of its own (its timestampWrites bracket the one dispatch).
    const pass = profiler ? this.commandEncoder().beginComputePass(profiler.passFor(kernel.name, work)) : this.computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(workgroups[0], workgroups[1] ?? 1, workgroups[2] ?? 1);
    if (profiler) pass.end();
    this.dispatchesInBatch++;
    this.recentKernels.push(kernel.name);
    if (this.recentKernels.length > 4) this.recentKernels.shift();
    if (profiler?.timing === 'cpu') this.flush();
  }

  /**
   * Starts timing every dispatch (see engine/profiler.ts): GPU timestamps where the adapter has
   * timestamp-query, else CPU timing with a flush per kernel. `stop()` waits for the recorded work and
   * returns the report (formatProfileTable, chromeTrace).
   */
  profile(options: ProfileOptions = {}): ProfileSession {
    if (this.profiler) throw new VitgpuError('a profile is already running on this device');
    const hasTimestamps = this.info.features.includes('timestamp-query');
    const timing = options.timing ?? (hasTimestamps ? 'timestamp' : 'cpu');
    if (timing === 'timestamp' && !hasTimestamps) throw new VitgpuError(`profile: the adapter (${this.name}) has no timestamp-query; use timing 'cpu'`);
    this.flush();
    const profiler = (this.profiler = new Profiler(this.gpu, timing, this.name));
    return {
      timing,
      stop: async () => {
        if (this.profiler !== profiler) throw new VitgpuError('this profile was already stopped');
        this.flush();
        this.profiler = null;
        return profiler.finish();
      },
    };
  }

  /** Submits everything recorded so far. */
  flush(): void {
    if (!this.encoder) return;
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    if (this.uniformUsed > 0) {
      this.gpu.queue.writeBuffer(this.uniformRing, 0, this.uniformStaging.buffer, 0, this.uniformUsed);
    }
    const timestamps = this.profiler?.beforeSubmit(this.encoder) ?? null;
    this.gpu.queue.submit([this.encoder.finish()]);
    this.pool.submitted();
    this.profiler?.afterSubmit(timestamps);
    this.encoder = null;
    this.uniformUsed = 0;
    this.dispatchesInBatch = 0;
    this.batchId++;
  }

  /** Copies `byteLength` bytes of `src` (from `byteOffset`) back to the CPU. */
  async read(src: PooledBuffer, byteOffset: number, byteLength: number): Promise<ArrayBuffer> {
    // Errors of earlier work are reported after the wait, when compile errors have arrived too.
    if (this.lostError) throw this.lostError;
    if (byteLength === 0) return new ArrayBuffer(0);
    const start = Math.floor(byteOffset / 4) * 4;
    const size = Math.ceil((byteOffset + byteLength - start) / 4) * 4;
    const stagingSize = sizeClass(size);
    const staging = this.readbackFree.get(stagingSize)?.pop() ??
      this.gpu.createBuffer({ label: 'vitgpu readback', size: stagingSize, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
    const encoder = this.commandEncoder();
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    src.lastBatch = this.batchId;
    encoder.copyBufferToBuffer(src.buffer, start, staging, 0, size);
    this.flush();
    const mapped = staging.mapAsync(BufferUsage.MAP_READ, 0, size).then(() => null);
    const outcome = await Promise.race([mapped, this.lostPromise]);
    if (outcome instanceof DeviceLostError) {
      mapped.catch(() => {});
      throw outcome;
    }
    const copy = staging.getMappedRange(0, size).slice(byteOffset - start, byteOffset - start + byteLength);
    staging.unmap();
    if (this.pendingChecks.size) await Promise.all(this.pendingChecks);
    let list = this.readbackFree.get(stagingSize);
    if (!list) this.readbackFree.set(stagingSize, (list = []));
    if (list.length < 4) list.push(staging);
    else staging.destroy();
    this.checkHealthy();
    await this.runIdleWork();
    return copy;
  }

  /** Waits until all submitted work has finished (raising device-lost and WebGPU errors). */
  async sync(): Promise<void> {
    if (this.lostError) throw this.lostError;
    this.flush();
    const done = this.gpu.queue.onSubmittedWorkDone().then(() => null);
    const outcome = await Promise.race([done, this.lostPromise]);
    if (outcome instanceof DeviceLostError) throw outcome;
    if (this.pendingChecks.size) await Promise.all(this.pendingChecks);
    this.checkHealthy();
    await this.runIdleWork();
  }

  private async runIdleWork(): Promise<void> {
    const work = this.idleWork;
    this.idleWork = null;
    if (work) await work();
  }

  /** Releases the GPU device; later calls fail with DeviceLostError. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.pool.trim();
    this.gpu.destroy();
    for (const hook of this.destroyHooks.splice(0)) hook();
  }

  /** Runs `hook` once when destroy() is called. */
  onDestroy(hook: () => void): void {
    this.destroyHooks.push(hook);
  }

  private commandEncoder(): GPUCommandEncoder {
    if (!this.encoder) this.encoder = this.gpu.createCommandEncoder({ label: `vitgpu batch ${this.batchId}` });
    return this.encoder;
  }

  private computePass(): GPUComputePassEncoder {
    if (!this.pass) this.pass = this.commandEncoder().beginComputePass();
    return this.pass;
  }
}
