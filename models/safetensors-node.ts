// Node file access for safetensors: a ByteSource on a FileHandle (positioned reads, never the whole
// file) and an atomic writer. The format itself lives in the browser-safe models/safetensors.ts.

import { randomBytes } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { encodeSafetensors, type ByteSource, type TensorToWrite } from './safetensors.js';

export type SafetensorsFile = ByteSource & { close(): Promise<void> };

/** Opens a file for readHeader()/readTensorF32(); close() it when done. */
export async function openSafetensorsFile(path: string): Promise<SafetensorsFile> {
  const handle = await open(path, 'r');
  let size: number;
  try {
    size = (await handle.stat()).size;
  } catch (err) {
    await handle.close();
    throw err;
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

/**
 * Writes a safetensors file atomically: the chunks stream into a temporary file beside the target,
 * which is fsynced and renamed over it, so readers see the old file or the whole new one, never a
 * partial write. The temporary file is removed on failure.
 */
export async function writeSafetensorsFile(
  path: string,
  tensors: TensorToWrite[],
  metadata?: Record<string, string>,
): Promise<void> {
  const chunks = encodeSafetensors(tensors, metadata); // validation errors come before any file exists
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  let handle: FileHandle | undefined = await open(tmp, 'wx');
  try {
    for (const chunk of chunks) {
      for (let done = 0; done < chunk.byteLength; ) {
        const { bytesWritten } = await handle.write(chunk, done, chunk.byteLength - done);
        done += bytesWritten;
      }
    }
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(tmp, path);
  } catch (err) {
    await handle?.close().catch(() => {});
    await rm(tmp, { force: true }).catch(() => {});
    throw err;
  }
  await syncDirectory(dirname(path));
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
