// A lease on a run directory, on storage every worker shares (NFS included): at most one process
// trains or evaluates a run at a time, even when the queue hands a stalled job to a second worker
// while the first still lives.
//
// - RUN/lease.json holds { owner, token, host, pid, acquiredAt, expiresAt }. It is created by link(2)
//   from a complete temporary file, which fails if the lease exists: atomic on local disks and on NFS.
// - The holder renews it every ttl/4 (write a temporary file, rename over). Before renewing it reads
//   the file back: a different token, or its own lease already past expiry (the process was stopped or
//   starved), means the lease is lost and the holder must stop at once; it never renews a lapsed lease.
// - The child that writes the run (vitgpu train / eval) polls the same file (guard-node.ts) and kills
//   itself when the lease is no longer its own, or is within ttl/4 of expiring unrenewed: the writer
//   stops even if its worker is frozen.
// - Another process takes the lease over only when it expired more than `grace` ago (clock skew
//   between machines), or when its holder is a dead process on the same host. Taking over renames
//   the file aside first and checks that it moved the lease it judged stale; if a fresh lease moved
//   instead, it is put back.

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface LeaseRecord {
  owner: string;
  token: string;
  host: string;
  pid: number;
  acquiredAt: number;
  expiresAt: number;
}

export interface LeaseOptions {
  /** Who holds it (a worker id), for status and logs. */
  owner: string;
  /** Lease lifetime; renewed every ttl/4. */
  ttlMs: number;
  /** Extra wait past expiry before taking a lease over (clock skew between machines). */
  graceMs?: number;
  pollMs?: number;
  /** Called while the lease is held by another, live holder. */
  onWait?: (holder: LeaseRecord) => void;
  /** Called once if the lease is lost while held. */
  onLost?: (why: string) => void;
}

export async function readLease(path: string): Promise<LeaseRecord | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as LeaseRecord;
  } catch {
    return null;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether a lease may be taken over now. */
export function isStale(l: LeaseRecord, now: number, graceMs: number): boolean {
  if (now > l.expiresAt + graceMs) return true;
  return l.host === hostname() && l.pid !== process.pid && !processAlive(l.pid);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Lease {
  private timer: NodeJS.Timeout | null = null;
  private lostWhy: string | null = null;
  private renewing: Promise<void> = Promise.resolve();

  private constructor(readonly path: string, readonly record: LeaseRecord, private readonly opts: LeaseOptions) {}

  get lost(): string | null {
    return this.lostWhy;
  }

  /** Waits until the lease is free (or stale) and takes it. */
  static async acquire(path: string, opts: LeaseOptions): Promise<Lease> {
    await mkdir(dirname(path), { recursive: true });
    const graceMs = opts.graceMs ?? 10_000;
    const token = randomBytes(12).toString('hex');
    for (;;) {
      const now = Date.now();
      const record: LeaseRecord = { owner: opts.owner, token, host: hostname(), pid: process.pid, acquiredAt: now, expiresAt: now + opts.ttlMs };
      const tmp = `${path}.new-${token}`;
      await writeFile(tmp, JSON.stringify(record));
      try {
        await link(tmp, path);
        const lease = new Lease(path, record, opts);
        lease.timer = setInterval(() => {
          lease.renewing = lease.renewing.then(() => lease.renew());
        }, Math.max(50, opts.ttlMs / 4));
        lease.timer.unref();
        return lease;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      } finally {
        await unlink(tmp).catch(() => {});
      }
      const holder = await readLease(path);
      if (holder === null) continue; // released (or being replaced) meanwhile
      if (isStale(holder, Date.now(), graceMs)) {
        await Lease.breakStale(path, holder, token);
        continue;
      }
      opts.onWait?.(holder);
      await sleep(opts.pollMs ?? 1000);
    }
  }

  private static async breakStale(path: string, stale: LeaseRecord, token: string): Promise<void> {
    const aside = `${path}.stale-${token}`;
    try {
      await rename(path, aside);
    } catch {
      return; // someone else broke or released it
    }
    const moved = await readLease(aside);
    if (moved && moved.token !== stale.token) {
      // A fresh lease replaced the stale one between our read and the rename: give it back.
      await link(aside, path).catch(() => {});
    }
    await unlink(aside).catch(() => {});
  }

  /** Extends the lease, or marks it lost. */
  private async renew(): Promise<void> {
    if (this.lostWhy) return;
    const now = Date.now();
    const current = await readLease(this.path);
    let why: string | null = null;
    if (!current || current.token !== this.record.token) why = current ? `taken over by ${current.owner}` : 'lease file removed';
    else if (now > this.record.expiresAt) why = `lapsed ${now - this.record.expiresAt} ms before it could be renewed`;
    if (why) {
      this.markLost(why);
      return;
    }
    this.record.expiresAt = now + this.opts.ttlMs;
    const tmp = `${this.path}.renew-${this.record.token}`;
    await writeFile(tmp, JSON.stringify(this.record));
    await rename(tmp, this.path);
  }

  private markLost(why: string): void {
    this.lostWhy = why;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.opts.onLost?.(why);
  }

  /** Gives the lease up (only if it is still ours). */
  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.renewing;
    if (this.lostWhy) return;
    const current = await readLease(this.path);
    if (current?.token === this.record.token) await unlink(this.path).catch(() => {});
  }
}

/** Environment for a child process that must stop when the lease is no longer held (guard-node.ts). */
export function guardEnv(lease: Lease): Record<string, string> {
  return {
    VITGPU_LEASE_FILE: lease.path,
    VITGPU_LEASE_TOKEN: lease.record.token,
    VITGPU_LEASE_MARGIN_MS: String(Math.round(Math.max(50, lease.record.expiresAt - lease.record.acquiredAt) / 4)),
  };
}
