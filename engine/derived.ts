// Buffers derived from another buffer's contents, kept while that buffer is unchanged: the 'window'
// matmul's packed copy of its B operand (kernels/matmul.ts). In inference the same weights are packed
// again at every call; with this cache a weight is packed into a kept buffer the second time it is
// seen unchanged, and from then on the pack is skipped. Browser-safe.
//
// "Unchanged" is enforced by the device, which tells the cache about every write into a pooled
// buffer: a dispatch binding it read_write, a queue write (Device.write), and its release to the
// pool (a later owner will write it). Each such write drops the buffer's entries and releases the
// buffers derived from it, so a derived buffer can never be read stale. A buffer is only kept on its
// second sight: in training every weight is written by the optimizer between two packs, so nothing
// is kept there and training memory does not grow.

import { envValue } from './adapter-info.js';
import type { PooledBuffer } from './buffer-pool.js';
import { VitgpuError } from './errors.js';

interface Entry {
  /** The kept buffer, or null when the source was seen once (the next sight keeps one). */
  kept: PooledBuffer | null;
  bytes: number;
}

export interface DerivedStats {
  /** Bytes in kept buffers. */
  keptBytes: number;
  keptBuffers: number;
  /** Lookups answered by a kept buffer since the device was created. */
  hits: number;
}

/** What the cache needs of the device: buffers from its pool. */
export interface DerivedAllocator {
  allocate(bytes: number): PooledBuffer;
  release(pb: PooledBuffer): void;
}

export class DerivedCache {
  private readonly entries = new Map<PooledBuffer, Map<string, Entry>>();
  private keptBytes = 0;
  private keptBuffers = 0;
  private hits = 0;

  /** `maxBytes`: kept bytes at most; past it a derived buffer is made for the call and released. */
  constructor(
    private readonly device: DerivedAllocator,
    readonly maxBytes: number,
  ) {}

  /** True when some buffer has entries (so writes need to be reported at all). */
  get active(): boolean {
    return this.entries.size > 0;
  }

  /**
   * The buffer derived from `source` under `key` (what it is derived as: layout, offsets, sizes), of
   * `bytes` bytes. `fill(into)` records the work that derives it. `temporary` says the caller must
   * release the buffer after recording its use. `keep` false derives it for this call only, and
   * neither uses nor makes a kept one (to time the derivation, as the autotuner does).
   */
  get(source: PooledBuffer, key: string, bytes: number, fill: (into: PooledBuffer) => void, keep = true): { buffer: PooledBuffer; temporary: boolean } {
    if (!keep || bytes > this.maxBytes) {
      // Nothing to remember: no entry, so a cache with a budget of 0 costs the device nothing.
      const buffer = this.device.allocate(bytes);
      fill(buffer);
      return { buffer, temporary: true };
    }
    let bySource = this.entries.get(source);
    const entry = bySource?.get(key);
    if (entry?.kept) {
      this.hits++;
      return { buffer: entry.kept, temporary: false };
    }
    const buffer = this.device.allocate(bytes);
    fill(buffer);
    if (!bySource) this.entries.set(source, (bySource = new Map()));
    if (entry && this.keptBytes + bytes <= this.maxBytes) {
      entry.kept = buffer;
      entry.bytes = bytes;
      this.keptBytes += bytes;
      this.keptBuffers++;
      return { buffer, temporary: false };
    }
    if (!entry) bySource.set(key, { kept: null, bytes });
    return { buffer, temporary: true };
  }

  /** `pb` is being written (or released): what was derived from it is dropped. */
  written(pb: PooledBuffer): void {
    const bySource = this.entries.get(pb);
    if (!bySource) return;
    this.entries.delete(pb);
    for (const e of bySource.values()) {
      if (!e.kept) continue;
      this.keptBytes -= e.bytes;
      this.keptBuffers--;
      this.device.release(e.kept);
    }
  }

  /** Drops every entry and releases every kept buffer (to free their memory). */
  clear(): void {
    for (const pb of [...this.entries.keys()]) this.written(pb);
  }

  stats(): DerivedStats {
    return { keptBytes: this.keptBytes, keptBuffers: this.keptBuffers, hits: this.hits };
  }
}

/** Bytes of derived buffers to keep: the option, else VITGPU_DERIVED_MB (MiB), else 1 GiB. */
export function derivedBudget(bytes: number | undefined): number {
  const env = envValue('VITGPU_DERIVED_MB');
  const v = bytes ?? (env === undefined ? 2 ** 30 : Number(env) * 2 ** 20);
  if (!Number.isFinite(v) || v < 0) {
    throw new VitgpuError(bytes === undefined ? `VITGPU_DERIVED_MB="${env}": expected MiB of kept matmul packs, a number ≥ 0 (0 keeps none)` : `maxDerivedBytes: ${bytes} is not a byte count ≥ 0`);
  }
  return v;
}
