// Kernel profiler: how long each dispatch took on the device, collected while a profile is running
// (device.profile(); the CLI's --profile; VITGPU_PROFILE=1). Browser-safe.
//
// Two ways to time, chosen per device:
// - 'timestamp' (the adapter has `timestamp-query`): the device gives every dispatch a compute pass of
//   its own whose timestampWrites write its start and end into a query set. At each submission the
//   queries are resolved into a buffer and copied to a mappable one; that one is read when the GPU is
//   done with it, without waiting for it, so timing costs a pass per dispatch and one small read per
//   batch, and the recorded work is not serialized.
// - 'cpu' (no `timestamp-query`, or asked for): every dispatch is submitted on its own and its end is
//   the moment queue.onSubmittedWorkDone() resolves. A kernel's time is from the later of its
//   submission and the previous completion to its completion. Those moments are seen only when
//   JavaScript gets to run, so this is coarser: it includes queue gaps and event-loop delays, and the
//   report says it is CPU-timed.
// When no profile runs, the device records no pass, query or read of its own (see Device.dispatch).

import { BufferUsage } from './buffer-pool.js';
import { GpuError } from './errors.js';
import { KernelTotals, type KernelWork, type ProfileReport, type ProfileTiming } from './profile-report.js';

export type { KernelEvent, KernelStats, KernelWork, ProfileReport, ProfileTiming, ChromeTrace } from './profile-report.js';

/** Dispatches one batch can time; the device submits early when a batch reaches it. */
export const PROFILE_QUERY_CAPACITY = 1024;

export interface ProfileOptions {
  /** 'timestamp' (default where the adapter offers timestamp-query) or 'cpu' (a flush per kernel). */
  timing?: ProfileTiming;
}

/** A running profile: `stop()` ends it once the work recorded so far has finished, and reports. */
export interface ProfileSession {
  readonly timing: ProfileTiming;
  stop(): Promise<ProfileReport>;
}

interface Pending {
  name: string;
  work?: KernelWork;
}

/** WebGPU's GPUBufferUsage.QUERY_RESOLVE and GPUMapMode.READ (no globals needed). */
const QUERY_RESOLVE = 0x0200;
const MAP_MODE_READ = 0x0001;

/** 2 queries × 8 bytes per dispatch. */
const BYTES_PER_DISPATCH = 16;

export class Profiler {
  private readonly started = performance.now();
  private readonly querySet: GPUQuerySet | null = null;
  private readonly resolveBuffer: GPUBuffer | null = null;
  private readonly freeStaging: GPUBuffer[] = [];
  /** Dispatches recorded into the batch not yet submitted. */
  private batch: Pending[] = [];
  private readonly inflight = new Set<Promise<void>>();
  private readonly totals = new KernelTotals();
  /** Timestamps are relative to the first one seen (ns, as BigInt), so event times stay exact numbers. */
  private origin: bigint | null = null;
  /** cpu timing: when the previous submission's work was seen to finish (ms, performance.now()). */
  private lastDone = 0;
  private lastDonePromise: Promise<void> = Promise.resolve();
  private failure: Error | null = null;

  constructor(private readonly gpu: GPUDevice, readonly timing: ProfileTiming, private readonly deviceName: string) {
    if (timing === 'timestamp') {
      this.querySet = gpu.createQuerySet({ label: 'vitgpu profile', type: 'timestamp', count: 2 * PROFILE_QUERY_CAPACITY });
      this.resolveBuffer = gpu.createBuffer({
        label: 'vitgpu profile resolve',
        size: BYTES_PER_DISPATCH * PROFILE_QUERY_CAPACITY,
        usage: QUERY_RESOLVE | BufferUsage.COPY_SRC,
      });
    }
    this.lastDone = this.started;
  }

  /** True when the batch has no room for another timed dispatch (the device submits first). */
  get full(): boolean {
    return this.batch.length >= PROFILE_QUERY_CAPACITY;
  }

  /** The descriptor of the compute pass that holds one dispatch of `name`, and notes the dispatch. */
  passFor(name: string, work: KernelWork | undefined): GPUComputePassDescriptor {
    const i = this.batch.length;
    this.batch.push({ name, work });
    if (!this.querySet) return { label: name };
    return { label: name, timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } };
  }

  /** Called with the batch's encoder just before it is finished: resolves the batch's queries. */
  beforeSubmit(encoder: GPUCommandEncoder): GPUBuffer | null {
    if (!this.querySet || this.batch.length === 0) return null;
    const bytes = this.batch.length * BYTES_PER_DISPATCH;
    const staging = this.freeStaging.pop() ?? this.gpu.createBuffer({
      label: 'vitgpu profile read',
      size: BYTES_PER_DISPATCH * PROFILE_QUERY_CAPACITY,
      usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST,
    });
    encoder.resolveQuerySet(this.querySet, 0, 2 * this.batch.length, this.resolveBuffer!, 0);
    encoder.copyBufferToBuffer(this.resolveBuffer!, 0, staging, 0, bytes);
    return staging;
  }

  /** Called just after the batch was submitted, with what beforeSubmit returned. */
  afterSubmit(staging: GPUBuffer | null): void {
    const batch = this.batch;
    this.batch = [];
    if (this.timing === 'cpu') {
      this.track(this.cpuTimed(batch));
    } else if (staging) {
      this.track(this.readTimestamps(staging, batch));
    }
  }

  private track(p: Promise<void>): void {
    const tracked = p.catch((err) => {
      this.failure ??= err as Error;
    }).finally(() => this.inflight.delete(tracked));
    this.inflight.add(tracked);
  }

  private async readTimestamps(staging: GPUBuffer, batch: Pending[]): Promise<void> {
    await staging.mapAsync(MAP_MODE_READ, 0, batch.length * BYTES_PER_DISPATCH);
    const t = new BigInt64Array(staging.getMappedRange(0, batch.length * BYTES_PER_DISPATCH).slice(0));
    staging.unmap();
    this.freeStaging.push(staging);
    this.origin ??= t[0];
    for (let i = 0; i < batch.length; i++) {
      const begin = t[2 * i];
      const end = t[2 * i + 1];
      // Some drivers report 0 or a wrapped value for a query they could not write: kept with no time.
      const dur = end > begin && begin > 0n ? Number(end - begin) / 1e6 : 0;
      this.totals.add({ ...batch[i], startMs: Number(begin - this.origin) / 1e6, ms: dur });
    }
  }

  private cpuTimed(batch: Pending[]): Promise<void> {
    const submitted = performance.now();
    const previous = this.lastDonePromise;
    const done = this.gpu.queue.onSubmittedWorkDone().then(async () => {
      const at = performance.now();
      await previous;
      const start = Math.max(submitted, this.lastDone);
      this.lastDone = at;
      // A batch without dispatches (a read's copy) only moves the clock on.
      for (const d of batch) this.totals.add({ ...d, startMs: start - this.started, ms: (at - start) / batch.length });
    });
    this.lastDonePromise = done;
    return done;
  }

  /** Waits for every outstanding read, frees the GPU objects and reports (the device has flushed). */
  async finish(): Promise<ProfileReport> {
    while (this.inflight.size) await Promise.all([...this.inflight]);
    const wallMs = performance.now() - this.started;
    this.querySet?.destroy();
    this.resolveBuffer?.destroy();
    for (const b of this.freeStaging.splice(0)) b.destroy();
    if (this.failure) throw new GpuError(`profiler: reading the kernel times failed: ${this.failure.message}`);
    return this.totals.report({ timing: this.timing, device: this.deviceName, wallMs });
  }
}
