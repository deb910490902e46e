// Shared by the study tests: generated datasets and plans, the CLI as a child process, waiting on
// files, and a real redis-server on a free loopback port.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { BIN } from '../cli-runner.js';
import { writeSyntheticDataset } from '../../train/demo-data-node.js';

/** Two generated datasets (alpha: 4 labels, beta: 3 of them) under dir. */
export async function writeStudyData(dir: string): Promise<void> {
  await writeSyntheticDataset(join(dir, 'alpha'), { images: 90, size: 36, seed: 11 });
  await writeSyntheticDataset(join(dir, 'beta'), { images: 90, size: 36, seed: 12 });
}

/** The tests' study: vit-micro at 32 px, 2 datasets × 2 initializations × 2 fractions × 1 seed. */
export const STUDY_PLAN = `# the study tests' plan
name: ci
datasets:
  alpha:
    data: alpha/master_list.csv
  beta:
    data: beta/master_list.csv
    labels: [cardiomegaly, pleural_effusion, nodule]
initializations:
  scratch: random
  narrow:
    random: true
    arch: vit-tiny-test
fractions: [0.5, 1]
seeds: [3]
reference: scratch
train:
  arch: vit-micro
  image_size: 32
  epochs: 3
  batch_size: 8
  lr: 0.001
  patience: 0
  workers: 1
eval:
  resamples: 200
cross: all
`;

export function writePlan(dir: string, text = STUDY_PLAN, name = 'plan.yaml'): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

export interface Spawned {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `vitgpu ARGS` as a child process, its stdout and stderr collected. */
export function spawnVitgpu(args: string[]): Spawned {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout!.on('data', (d) => (text += d));
  child.stderr!.on('data', (d) => (text += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  return { child, output: () => text, exited };
}

/** Polls `test` every 20 ms until it is true; fails after timeoutMs with `what`. */
export async function waitFor(what: string, test: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function runDirs(study: string): string[] {
  const root = join(study, 'runs');
  return existsSync(root) ? readdirSync(root).map((d) => join(root, d)) : [];
}

/** A run directory mid-training: a checkpoint, no summary yet, the lease held by `pidPart` (if given). */
export function midTraining(study: string, pidPart?: string): string | undefined {
  return runDirs(study).find((d) => {
    if (!existsSync(join(d, 'train', 'last', 'checkpoint.safetensors')) || existsSync(join(d, 'train', 'summary.json'))) return false;
    if (!pidPart) return true;
    try {
      return JSON.parse(readFileSync(join(d, 'lease.json'), 'utf8')).owner.includes(pidPart);
    } catch {
      return false;
    }
  });
}

export function attempts(runDir: string): { owner: string; event: string; at: number; outcome?: string }[] {
  const f = join(runDir, 'attempts.jsonl');
  return existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
}

/** Processes whose command line names `needle`, with their parent pid (from /proc). */
export function processesNaming(needle: string): { pid: number; ppid: number }[] {
  const out: { pid: number; ppid: number }[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (!cmd.includes(needle)) continue;
      const ppid = Number(/PPid:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))![1]);
      out.push({ pid: Number(p), ppid });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolvePort(port));
    });
  });
}

/** A real redis-server on 127.0.0.1, no persistence; throws with a clear message when it is not installed. */
export async function startRedis(): Promise<{ url: string; stop: () => Promise<void> }> {
  const which = spawnSync('sh', ['-c', 'command -v redis-server']);
  if (which.status !== 0) {
    throw new Error('redis-server is not installed: the distributed study test needs Debian\'s redis-server (npm run setup installs it)');
  }
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  await waitFor(`redis-server on port ${port} (log: ${log})`, () => /Ready to accept connections/.test(log) || child.exitCode !== null, 15_000);
  if (child.exitCode !== null) throw new Error(`redis-server exited: ${log}`);
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      if (child.exitCode !== null) return;
      const gone = new Promise((r) => child.on('exit', r));
      child.kill('SIGTERM');
      await gone;
    },
  };
}
