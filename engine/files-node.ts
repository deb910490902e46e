// File access for Node: random-access reads of large checkpoints and the one atomic file writer that
// every checkpoint, report, log, run file and cache entry goes through. Part of the Node entry
// (engine/node.ts re-exports it); kept apart from Dawn so that image worker threads can write cache
// entries without loading the GPU module.

import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { VitgpuError } from './errors.js';

/** A file could not be read or written; the message names the path, what failed, and what to do. */
export class FileError extends VitgpuError {
  constructor(readonly path: string, readonly code: string | undefined, message: string) {
    super(message);
  }
}

const PROBLEMS: Record<string, [string, string]> = {
  ENOENT: ['no such file or directory', 'check the path'],
  EACCES: ['permission denied', 'check its permissions or choose another path'],
  EPERM: ['operation not permitted', 'check its permissions or choose another path'],
  EROFS: ['read-only file system', 'choose a path on a writable disk'],
  ENOSPC: ['no space left on device', 'free some space (or choose another disk), then run again'],
  EDQUOT: ['disk quota exceeded', 'free some space (or choose another disk), then run again'],
  EISDIR: ['is a directory, not a file', 'name a file'],
  ENOTDIR: ['a part of the path is a file, not a directory', 'check the path'],
  EEXIST: ['already exists', 'choose another path'],
  EMFILE: ['too many open files', 'raise the limit (ulimit -n) or use fewer --workers'],
  EIO: ['input/output error', 'check the disk'],
};

/**
 * The one-line FileError for a failed file operation on `path` (`doing`: "write", "read", "create
 * the folder"). Errors that are not file-system errors pass through unchanged.
 */
export function fileError(err: unknown, path: string, doing: string, hint?: string): Error {
  if (err instanceof VitgpuError || !(err instanceof Error)) return err as Error;
  const code = (err as NodeJS.ErrnoException).code;
  if (!code || !(err as NodeJS.ErrnoException).syscall) return err;
  const [what, todo] = PROBLEMS[code] ?? [err.message, 'check the path'];
  return new FileError(path, code, `${path}: cannot ${doing}: ${what} (${code}); ${hint ?? todo}`);
}

export interface FileSource {
  size: number;
  name: string;
  read(offset: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

/**
 * Random access to a file through a FileHandle (positioned reads, never the whole file): the
 * ByteSource that models/safetensors.ts reads checkpoints from. close() it when done.
 */
export async function openFileSource(path: string): Promise<FileSource> {
  const handle = await open(path, 'r').catch((err) => {
    throw fileError(err, path, 'open it for reading');
  });
  let size: number;
  try {
    const st = await handle.stat();
    if (st.isDirectory()) throw new FileError(path, 'EISDIR', `${path}: is a directory, not a file; name a file inside it`);
    if (!st.isFile()) throw new FileError(path, undefined, `${path}: not a regular file; name a file`);
    size = st.size;
  } catch (err) {
    await handle.close();
    throw fileError(err, path, 'read it');
  }
  return {
    size,
    name: path,
    async read(offset: number, length: number): Promise<Uint8Array> {
      if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
        throw new RangeError(`${path}: invalid read of ${length} bytes at ${offset}`);
      }
      const want = Math.max(0, Math.min(length, size - offset));
      const buf = new Uint8Array(want);
      let filled = 0;
      while (filled < want) {
        const { bytesRead } = await handle.read(buf, filled, want - filled, offset + filled);
        if (bytesRead === 0) break; // the file shrank since open: the reader reports the short read
        filled += bytesRead;
      }
      return filled === want ? buf : buf.subarray(0, filled);
    },
    close: () => handle.close(),
  };
}

/** What an atomic write takes: text (UTF-8), bytes, or bytes in chunks (streamed, never joined). */
export type FileData = string | Uint8Array | readonly Uint8Array[];

export interface AtomicWriteOptions {
  /** fsync the file and its folder (default true: checkpoints and run files; false for caches). */
  durable?: boolean;
  /** Create the parent folder when missing (default false). */
  mkdir?: boolean;
}

/**
 * The temporary name a write to `path` goes through: `PATH.tmp-PID-RANDOM`, beside the target so the
 * rename stays on one file system. A writer killed mid-write leaves such a file; STALE_TEMP matches
 * them for cleanup (see removeStaleTemps).
 */
export function tempPath(path: string): string {
  return `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
}

/** Matches the temporary files of tempPath and captures the writer's PID. */
export const STALE_TEMP = /\.tmp-(\d+)-[0-9a-f]{12}$/;

function chunksOf(data: FileData): readonly Uint8Array[] {
  return typeof data === 'string' ? [new TextEncoder().encode(data)] : data instanceof Uint8Array ? [data] : data;
}

/**
 * Writes `data` to `path` atomically: it streams into a temporary file beside the target, which is
 * (by default) fsynced and renamed over it, so readers see the old file or the whole new one, never a
 * partial write (checkpoints survive a killed run). The temporary file is removed on failure.
 */
export async function writeFileAtomic(path: string, data: FileData, options: AtomicWriteOptions = {}): Promise<void> {
  try {
    await writeAtomicUnwrapped(path, data, options);
  } catch (err) {
    throw fileError(err, path, 'write it', undefined);
  }
}

async function writeAtomicUnwrapped(path: string, data: FileData, options: AtomicWriteOptions): Promise<void> {
  const durable = options.durable ?? true;
  if (options.mkdir) await mkdir(dirname(path), { recursive: true });
  const tmp = tempPath(path);
  let handle: FileHandle | undefined = await open(tmp, 'wx');
  try {
    for (const chunk of chunksOf(data)) {
      for (let done = 0; done < chunk.byteLength; ) {
        const { bytesWritten } = await handle.write(chunk, done, chunk.byteLength - done);
        done += bytesWritten;
      }
    }
    if (durable) await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(tmp, path);
  } catch (err) {
    await handle?.close().catch(() => {});
    await rm(tmp, { force: true }).catch(() => {});
    throw err;
  }
  if (durable) await syncDirectory(dirname(path));
}

/** writeFileAtomic for synchronous callers (the image workers' cache entries); same guarantees. */
export function writeFileAtomicSync(path: string, data: FileData, options: AtomicWriteOptions = {}): void {
  try {
    writeAtomicSyncUnwrapped(path, data, options);
  } catch (err) {
    throw fileError(err, path, 'write it');
  }
}

function writeAtomicSyncUnwrapped(path: string, data: FileData, options: AtomicWriteOptions): void {
  const durable = options.durable ?? true;
  if (options.mkdir) mkdirSync(dirname(path), { recursive: true });
  const tmp = tempPath(path);
  let fd: number | undefined = openSync(tmp, 'wx');
  try {
    for (const chunk of chunksOf(data)) {
      for (let done = 0; done < chunk.byteLength; ) done += writeSync(fd, chunk, done, chunk.byteLength - done);
    }
    if (durable) fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** Makes the rename itself durable where the platform allows it (not on Windows). */
async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Best effort: the file's contents are already synced.
  } finally {
    await handle?.close().catch(() => {});
  }
}
