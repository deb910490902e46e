// A FIFO of image jobs over worker threads, or the main thread.
//
// Workers. Node 20 cannot run TypeScript in a worker, so the pool starts the compiled
// dist/datasets/image-worker-node.js (`npm run build`; `npm test` builds first). From the compiled
// image-pool-node.js that is the sibling file; from the TypeScript source (vitest) it is
// ../dist/datasets/image-worker-node.js. When that file is missing the pool warns once and does the
// same work on the main thread: same results, only slower. `workers: 0` asks for that explicitly.

import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { runImageJob, type ImageJob, type ImageJobResult, type WorkerReply, type WorkerRequest } from './image-jobs-node.js';


/** Where the compiled worker lives: next to the compiled loader, or under dist/ from the sources. */
export function defaultWorkerUrl(): URL {
  const here = import.meta.url;
  return here.endsWith('.js') ? new URL('./image-worker-node.js', here) : new URL('../dist/datasets/image-worker-node.js', here);
}

export function defaultWorkerCount(): number {
  return Math.max(1, availableParallelism() - 1);
}

export interface PoolOptions {
  /** Worker threads; 0 runs every job on the main thread. Default: CPUs − 1, at least 1. */
  workers?: number;
  workerUrl?: URL;
  onWarning?: (message: string) => void;
}

interface PendingJob {
  id: number;
  job: ImageJob;
  owner: object | null;
  resolve: (r: ImageJobResult) => void;
  reject: (e: Error) => void;
}

class CancelledError extends Error {}

/** A FIFO of image jobs over worker threads (or the main thread). Results do not depend on which ran a job. */
export class ImagePool {
  private readonly slots: { worker: Worker; job: PendingJob | null }[] = [];
  private readonly queue: PendingJob[] = [];
  private nextId = 0;
  private closed = false;
  private failure: Error | null = null;
  private inThreadBusy = false;
  private readonly warn: (message: string) => void;
  private warnedCache = false;
  readonly workerCount: number;

  constructor(options: PoolOptions = {}) {
    this.warn = options.onWarning ?? ((m) => console.warn(`vitgpu: ${m}`));
    let count = options.workers ?? defaultWorkerCount();
    const url = options.workerUrl ?? defaultWorkerUrl();
    if (count > 0 && !existsSync(fileURLToPath(url))) {
      this.warn(`${fileURLToPath(url)} not found (run \`npm run build\`); loading images on the main thread`);
      count = 0;
    }
    for (let i = 0; i < count; i++) {
      const worker = new Worker(url);
      worker.unref(); // referenced only while it has a job, so an idle pool never holds the process open
      const slot = { worker, job: null as PendingJob | null };
      worker.on('message', (reply: WorkerReply) => this.finish(slot, reply));
      worker.on('error', (err) => this.fail(slot, err));
      worker.on('exit', (code) => {
        if (!this.closed) this.fail(slot, new Error(`image worker exited with code ${code}`));
      });
      this.slots.push(slot);
    }
    this.workerCount = count;
  }

  /** Queues a job; `owner` lets cancel() drop it while it still waits. */
  run(job: ImageJob, owner: object | null = null): Promise<ImageJobResult> {
    if (this.closed) return Promise.reject(new Error('the image loader is closed'));
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, job, owner, resolve, reject });
      this.pump();
    });
  }

  /** Drops the queued (not yet started) jobs of `owner`; their promises reject. */
  cancel(owner: object): void {
    for (let i = this.queue.length - 1; i >= 0; i--) {
      if (this.queue[i].owner === owner) this.queue.splice(i, 1)[0].reject(new CancelledError('cancelled'));
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(new Error('the image loader was closed'));
    for (const s of this.slots) s.job?.reject(new Error('the image loader was closed'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private noteCache(result: ImageJobResult): void {
    if (result.ok && result.cacheWriteError && !this.warnedCache) {
      this.warnedCache = true;
      this.warn(`${result.cacheWriteError}; continuing without caching`);
    }
  }

  private pump(): void {
    if (this.closed) return;
    if (this.slots.length === 0) {
      // Main thread: one job per macrotask so timers and I/O still run between images.
      if (this.inThreadBusy || this.queue.length === 0) return;
      this.inThreadBusy = true;
      setImmediate(() => {
        this.inThreadBusy = false;
        const p = this.queue.shift();
        if (!p || this.closed) return this.pump();
        this.inThreadBusy = true;
        runImageJob(p.job).then((result) => {
          this.inThreadBusy = false;
          this.noteCache(result);
          p.resolve(result);
          this.pump();
        });
      });
      return;
    }
    for (const slot of this.slots) {
      if (this.queue.length === 0) break;
      if (slot.job) continue;
      const p = this.queue.shift()!;
      slot.job = p;
      slot.worker.ref();
      slot.worker.postMessage({ id: p.id, job: p.job } satisfies WorkerRequest);
    }
  }

  private finish(slot: { worker: Worker; job: PendingJob | null }, reply: WorkerReply): void {
    const p = slot.job;
    slot.job = null;
    slot.worker.unref();
    if (p && p.id === reply.id) {
      this.noteCache(reply.result);
      p.resolve(reply.result);
    }
    this.pump();
  }

  private fail(slot: { worker: Worker; job: PendingJob | null }, err: Error): void {
    if (this.closed) return;
    this.failure = new Error(`an image worker failed: ${err.message}`);
    slot.job?.reject(this.failure);
    slot.job = null;
    for (const p of this.queue.splice(0)) p.reject(this.failure);
  }
}
