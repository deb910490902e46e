// Shared plumbing for commands: device options, error reporting and process exit.
//
// Dawn keeps the process alive while a GPU instance exists (crbug 387965810), so every command ends
// with an explicit exit once its work is done.

import { Command, Option } from 'commander';
import { createNodeDevice, type Device } from '../engine/node.js';
import { NoAdapterError, VitgpuError } from '../engine/errors.js';

export interface DeviceFlags {
  adapter?: string;
  debugWgsl?: string | boolean;
}

/** Adds --adapter and --debug-wgsl to a command. */
export function withDeviceOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--adapter <name>', 'WebGPU adapter whose name contains NAME (see `vitgpu devices`)').env('VITGPU_ADAPTER'))
    .addOption(new Option('--debug-wgsl [kernel]', 'print the WGSL of each kernel (or those whose name contains KERNEL) when first built'));
}

export function openDevice(flags: DeviceFlags): Promise<Device> {
  return createNodeDevice({ adapter: flags.adapter, debugWgsl: flags.debugWgsl });
}

/** Runs a command body, prints errors without a stack for known failures, and exits the process. */
export function action<A extends unknown[]>(body: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    let code = 0;
    try {
      await body(...args);
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
