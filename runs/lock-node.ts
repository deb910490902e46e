// One writer per run directory (Node). `train` and `train --resume` hold RUN/.lock for as long as they
// write the run, so two processes given the same --out cannot mix their files. The lock file holds the
// holder's PID, host and command, and the holder touches it every few seconds (a heartbeat), so a lock
// left by a killed process is recognised as stale: on the same host when its PID is gone, on any host
// (a shared disk) when its heartbeat is older than STALE_SECONDS. Opening a run also removes the
// temporary files that writes killed midway left in it (they can be a checkpoint's size).

import { hostname } from 'node:os';
import { join, relative } from 'node:path';
import { mkdir, open, readdir, readFile, rm, stat, utimes } from 'node:fs/promises';
import { VitgpuError } from '../engine/errors.js';
import { fileError, STALE_TEMP } from '../engine/files-node.js';

/** A heartbeat older than this marks a lock as stale from any host (VITGPU_LOCK_STALE_SECONDS overrides). */
export const STALE_SECONDS = 120;
const HEARTBEAT_MS = 10_000;

export class RunLockedError extends VitgpuError {}

export interface RunLock {
  readonly file: string;
  release(): Promise<void>;
}

interface Holder {
  pid: number;
  host: string;
  command: string;
  since: string;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
}

function staleSeconds(): number {
  const v = Number(process.env.VITGPU_LOCK_STALE_SECONDS);
  return Number.isFinite(v) && v > 0 ? v : STALE_SECONDS;
}

/** Why the lock at `file` held by `holder` is stale, or null while its holder may still be writing. */
async function staleReason(file: string, holder: Holder | null): Promise<string | null> {
  const st = await stat(file).catch(() => null);
  if (!st) return 'gone';
  const age = (Date.now() - st.mtimeMs) / 1000;
  if (!holder) return age > 5 ? 'unreadable' : null; // a lock being written right now is given a moment
  if (holder.host === hostname() && !pidAlive(holder.pid)) return `process ${holder.pid} is gone`;
  if (age > staleSeconds()) return `no heartbeat for ${Math.round(age)} s`;
  return null;
}

/**
 * Creates `runDir` when needed and takes its lock, or throws RunLockedError naming the holder. A stale
 * lock is taken over (and said so through `info`).
 */
export async function lockRun(runDir: string, info: (message: string) => void = () => {}): Promise<RunLock> {
  const st = await stat(runDir).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? null : Promise.reject(fileError(err, runDir, 'use it as the run directory'))));
  if (st && !st.isDirectory()) throw new VitgpuError(`${runDir}: exists and is not a directory; choose another --out`);
  await mkdir(runDir, { recursive: true }).catch(async (err) => {
    // A recursive mkdir reports ENOENT for a read-only parent: ask again without it for the real reason.
    const plain = await mkdir(runDir).then(() => null, (e: unknown) => e);
    if (plain === null) return;
    throw fileError((plain as NodeJS.ErrnoException).code === 'ENOENT' ? err : plain, runDir, 'create the run directory', 'choose another --out');
  });
  const file = join(runDir, '.lock');
  const me: Holder = { pid: process.pid, host: hostname(), command: process.argv.slice(2).join(' '), since: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(file, 'wx');
      await handle.writeFile(`${JSON.stringify(me)}\n`);
      await handle.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fileError(err, file, 'create the run lock', 'choose another --out');
    }
    const holder = await readFile(file, 'utf8').then((t) => JSON.parse(t) as Holder, () => null);
    const reason = await staleReason(file, holder);
    if (!reason || attempt >= 2) {
      const who = holder ? `process ${holder.pid} on ${holder.host} (\`vitgpu ${holder.command}\`, since ${holder.since})` : 'another process';
      throw new RunLockedError(
        `${runDir} is in use by ${who}; wait for it to finish, or choose another --out. ` +
        `If that process no longer runs, remove ${file} (it is taken over by itself after ${staleSeconds()} s without a heartbeat).`,
      );
    }
    // Remove it only if it is still the lock we judged (another process may have taken it over since).
    const again = await readFile(file, 'utf8').catch(() => null);
    if (again !== null && holder && again.trim() !== JSON.stringify(holder)) continue;
    if (reason !== 'gone') info(`${runDir}: taking over a stale lock (${reason})`);
    await rm(file, { force: true });
  }
  const beat = setInterval(() => {
    const now = new Date();
    utimes(file, now, now).catch(() => {});
  }, HEARTBEAT_MS);
  beat.unref();
  let released = false;
  return {
    file,
    release: async () => {
      if (released) return;
      released = true;
      clearInterval(beat);
      // Only our own lock: a lock taken over after we were presumed dead belongs to someone else now.
      const holder = await readFile(file, 'utf8').then((t) => JSON.parse(t) as Holder, () => null);
      if (holder && holder.pid === me.pid && holder.host === me.host && holder.since === me.since) await rm(file, { force: true });
    },
  };
}

/**
 * Removes the temporary files (`NAME.tmp-PID-RANDOM`) that killed writes left in a run directory. Call
 * it while holding the run's lock: no other writer can be using them then. Returns what was removed.
 */
export async function removeStaleTemps(runDir: string): Promise<{ files: string[]; bytes: number }> {
  const removed: string[] = [];
  let bytes = 0;
  const walk = async (dir: string, depth: number): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory() && depth < 2) await walk(p, depth + 1);
      else if (e.isFile() && (STALE_TEMP.test(e.name) || /^\.summary\.json\.tmp-\d+$/.test(e.name) || /\.tmp-\d+$/.test(e.name))) {
        bytes += (await stat(p).catch(() => ({ size: 0 }))).size;
        await rm(p, { force: true });
        removed.push(relative(runDir, p));
      }
    }
  };
  await walk(runDir, 0);
  return { files: removed, bytes };
}
