// Preloaded (node --import) into every `vitgpu train` / `vitgpu eval` child a study starts, so the
// process that writes a run directory stops by itself when it may no longer write there:
// - its parent (the study or worker process) died: the IPC channel closes;
// - the run's lease (lease-node.ts) is no longer its parent's, or is about to expire unrenewed
//   because the parent is frozen or starved.
// It kills itself with SIGKILL, as a lost machine would: the run continues from its last checkpoint.
// The CLI itself is unchanged; without the environment variables this module does nothing.

import { readFileSync } from 'node:fs';

const die = () => process.kill(process.pid, 'SIGKILL');

if (process.channel) {
  process.on('disconnect', die);
  process.channel.unref();
}

const file = process.env.VITGPU_LEASE_FILE;
const token = process.env.VITGPU_LEASE_TOKEN;
const margin = Number(process.env.VITGPU_LEASE_MARGIN_MS ?? 0);
if (file && token) {
  const check = () => {
    let lease: { token?: string; expiresAt?: number } | null = null;
    try {
      lease = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      lease = null;
    }
    if (!lease || lease.token !== token || Date.now() > (lease.expiresAt ?? 0) - margin) die();
  };
  check();
  setInterval(check, Math.max(50, Math.min(500, margin / 2))).unref();
}
