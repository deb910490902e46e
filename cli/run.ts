// Shared plumbing for commands: device options, error reporting and process exit.
//
// Dawn keeps the process alive while a GPU instance exists (crbug 387965810), so every command ends
// with an explicit exit once its work is done.

import { Command, Option } from 'commander';
import { chromeTrace, createNodeDevice, formatProfileTable, writeFileAtomic, type Device, type ProfileSession } from '../engine/node.js';
import { NoAdapterError, VitgpuError } from '../engine/errors.js';
import { PRECISIONS, setDefaultPrecision } from '../engine/precision.js';
import { oneOf } from './options.js';

export interface DeviceFlags {
  adapter?: string;
  debugWgsl?: string | boolean;
  /** true: print the kernel table at the end; a path: also write the Chrome trace there. */
  profile?: string | boolean;
  /** f32 or mixed (commands with withPrecisionOption). */
  precision?: string;
}

export const PRECISION_HELP = 'f32 (the default, as the paper) or mixed: linear layers read f16 operands and accumulate in f32; LayerNorm, softmax, loss and optimizer stay f32';

/** Adds --precision to a command that runs a model (openDevice applies it). */
export function withPrecisionOption(cmd: Command): Command {
  return cmd.option('--precision <mode>', PRECISION_HELP);
}

/** Adds --adapter, --debug-wgsl and --profile to a command. */
export function withDeviceOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--adapter <name>', 'WebGPU adapter whose name contains NAME (see `vitgpu devices`)').env('VITGPU_ADAPTER'))
    .addOption(new Option('--debug-wgsl [kernel]', 'print the WGSL of each kernel (or those whose name contains KERNEL) when first built'))
    .addOption(new Option('--profile [file]', 'time every kernel; at the end print them by total time (stderr) and, with FILE, write a Chrome trace (Perfetto, chrome://tracing)').env('VITGPU_PROFILE'));
}

/** The command's running profile (started by openDevice, reported by action). */
let profiling: { session: ProfileSession; file: string | null } | null = null;

export async function openDevice(flags: DeviceFlags): Promise<Device> {
  const precision = oneOf(flags.precision, '--precision', PRECISIONS);
  const device = await createNodeDevice({ adapter: flags.adapter, debugWgsl: flags.debugWgsl });
  if (precision) setDefaultPrecision(precision);
  const p = flags.profile;
  if (p && p !== '0' && p !== 'false' && !profiling) {
    profiling = { session: device.profile(), file: typeof p === 'string' && p !== '1' && p !== 'true' ? p : null };
  }
  return device;
}

async function reportProfile(): Promise<void> {
  if (!profiling) return;
  const { session, file } = profiling;
  profiling = null;
  const report = await session.stop();
  console.error(`\n${formatProfileTable(report)}`);
  if (file) {
    await writeFileAtomic(file, JSON.stringify(chromeTrace(report, 'vitgpu')));
    console.error(`profile trace: ${file} (open it in Perfetto or chrome://tracing)`);
  }
}

/** Runs a command body, prints errors without a stack for known failures, and exits the process. */
export function action<A extends unknown[]>(body: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    let code = 0;
    try {
      try {
        await body(...args);
      } finally {
        await reportProfile();
      }
    } catch (err) {
      code = err instanceof NoAdapterError ? 2 : 1;
      if (err instanceof VitgpuError) console.error(`vitgpu: ${err.message}`);
      else if ((err as NodeJS.ErrnoException)?.syscall) {
        // A file-system error that no layer named more precisely: still one line, with its path.
        const e = err as NodeJS.ErrnoException;
        console.error(`vitgpu: ${e.path ? `${e.path}: ` : ''}${e.message}`);
      } else console.error(err);
    }
    process.exitCode = code;
    // Let stdout drain, then end the process even though Dawn holds handles open.
    setImmediate(() => process.exit(code));
  };
}
