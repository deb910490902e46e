// GPU buffer pool with size classes.
//
// Buffers are rounded up to a size class (four classes per power of two, so at most 25% waste), and
// released buffers wait in a free list for the next request of the same class instead of being
// destroyed: creating a GPUBuffer is slow, and a training step allocates the same sizes every time.
//
// Ordering hazard: queue.writeBuffer() runs before any work still sitting in the unsubmitted command
// encoder. A buffer released during the current batch may still be read by encoded-but-unsubmitted
// dispatches, so it may be handed out again as a *kernel output* (dispatches run in order) but never as
// an *upload target*. `lastBatch` records the batch that last used a buffer.
//
// Released buffers are memory the driver keeps (host memory on a CPU adapter, counted in the process's
// RSS): `peakHeldBytes` is the high-water mark of live + pooled. Giving pooled buffers up for requests
// they do not fit (destroying the oldest before creating a buffer) was tried and made it worse on
// lavapipe: the 512 px ViT-B forward's peak RSS went from 1066 to 2889 MiB, as destroyed buffers'
// memory does not go back at once and the new ones come on top (bench/RESULTS.md, Memory).

export const BufferUsage = {
  MAP_READ: 0x0001,
  MAP_WRITE: 0x0002,
  COPY_SRC: 0x0004,
  COPY_DST: 0x0008,
  UNIFORM: 0x0040,
  STORAGE: 0x0080,
} as const;

// UNIFORM too: a kernel may bind a 64 KiB window of a buffer as a uniform array (the 'window' matmul
// on lavapipe, where uniform loads are cheaper than storage loads; kernels/matmul.ts).
export const STORAGE_USAGE = BufferUsage.STORAGE | BufferUsage.UNIFORM | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;

export interface PooledBuffer {
  readonly buffer: GPUBuffer;
  /** Size class in bytes (the GPUBuffer's size). */
  readonly bytes: number;
  /** Id of the last command batch that bound this buffer. */
  lastBatch: number;
}

/** A byte range of a pooled buffer, bound as a uniform buffer (`var<uniform>`) rather than storage. */
export interface UniformWindow {
  readonly window: PooledBuffer;
  readonly offset: number;
  readonly size: number;
}

export interface MemoryStats {
  /** Bytes in buffers currently held by tensors or kernels. */
  liveBytes: number;
  /** Bytes in released buffers kept for reuse. */
  pooledBytes: number;
  /** Highest liveBytes seen since the device was created (or resetPeak()). */
  peakBytes: number;
  /** Highest liveBytes + pooledBytes (all the pool's buffers) since the device was created (or resetPeak()). */
  peakHeldBytes: number;
  liveBuffers: number;
  pooledBuffers: number;
  /** Of liveBytes, the bytes kept derived from unchanged buffers (packed weights: engine/derived.ts). */
  derivedBytes?: number;
}

const MIN_BYTES = 256;

/** Rounds a byte count up to its size class: 256 B minimum, then 4 classes per power of two. */
export function sizeClass(bytes: number): number {
  if (bytes <= MIN_BYTES) return MIN_BYTES;
  const pow = 2 ** Math.floor(Math.log2(bytes));
  const step = pow / 4;
  return Math.ceil(bytes / step) * step;
}

export class BufferPool {
  private readonly free = new Map<number, PooledBuffer[]>();
  private live = 0;
  private pooled = 0;
  private peak = 0;
  private peakHeld = 0;
  private liveCount = 0;
  private pooledCount = 0;
  /** Released past maxPooledBytes: destroyed once the batch that may still bind them is submitted. */
  private readonly doomed: GPUBuffer[] = [];

  constructor(
    private readonly device: GPUDevice,
    /** Released bytes above this are destroyed instead of kept. */
    public maxPooledBytes = 2 ** 31,
  ) {}

  /**
   * A buffer of at least `bytes`. `submittedBefore`: only a buffer whose last use is in a batch older
   * than this id qualifies (an upload target must not be read by unsubmitted work).
   */
  acquire(bytes: number, submittedBefore = Infinity): PooledBuffer {
    const size = sizeClass(bytes);
    const list = this.free.get(size);
    if (list) {
      for (let i = list.length - 1; i >= 0; i--) {
        if (list[i].lastBatch < submittedBefore) {
          const pb = list[i];
          list.splice(i, 1);
          this.pooled -= size;
          this.pooledCount--;
          return this.track(pb);
        }
      }
    }
    const buffer = this.device.createBuffer({ size, usage: STORAGE_USAGE });
    const pb = this.track({ buffer, bytes: size, lastBatch: -1 });
    this.peakHeld = Math.max(this.peakHeld, this.live + this.pooled);
    return pb;
  }

  release(pb: PooledBuffer): void {
    this.live -= pb.bytes;
    this.liveCount--;
    if (this.pooled + pb.bytes > this.maxPooledBytes) {
      // Recorded, not yet submitted work may bind it; destroyed now, that submission would fail.
      this.doomed.push(pb.buffer);
      return;
    }
    let list = this.free.get(pb.bytes);
    if (!list) this.free.set(pb.bytes, (list = []));
    list.push(pb);
    this.pooled += pb.bytes;
    this.pooledCount++;
  }

  /** Called by the device after each submission: destroys the buffers released past the limit. */
  submitted(): void {
    for (const b of this.doomed.splice(0)) b.destroy();
  }

  /** Destroys every pooled (released) buffer. */
  trim(): void {
    this.submitted();
    for (const list of this.free.values()) for (const pb of list) pb.buffer.destroy();
    this.free.clear();
    this.pooled = 0;
    this.pooledCount = 0;
  }

  stats(): MemoryStats {
    return {
      liveBytes: this.live,
      pooledBytes: this.pooled,
      peakBytes: this.peak,
      peakHeldBytes: this.peakHeld,
      liveBuffers: this.liveCount,
      pooledBuffers: this.pooledCount,
    };
  }

  resetPeak(): void {
    this.peak = this.live;
    this.peakHeld = this.live + this.pooled;
  }

  private track(pb: PooledBuffer): PooledBuffer {
    this.live += pb.bytes;
    this.liveCount++;
    if (this.live > this.peak) this.peak = this.live;
    return pb;
  }
}
