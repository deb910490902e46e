// `vitgpu merge-lora RUN --out FILE`: a LoRA run's adapters merged into its base, as a full checkpoint.

import type { Command } from 'commander';
import { VitgpuError } from '../engine/errors.js';
import { writeMergedLora } from '../runs/model-file-node.js';
import { action, openDevice, withDeviceOptions, type DeviceFlags } from './run.js';

export function registerMergeLora(program: Command): void {
  withDeviceOptions(
    program
      .command('merge-lora')
      .description('write a LoRA run\'s best adapters merged into its base as a full vitgpu checkpoint (W + alpha/rank · B·A)')
      .argument('<run>', 'a LoRA run directory (its best.safetensors), or an adapter checkpoint file')
      .requiredOption('--out <file>', 'the .safetensors file to write'),
  ).action(
    action(async (run: string, f: DeviceFlags & { out: string }) => {
      if (!f.out.endsWith('.safetensors')) throw new VitgpuError(`--out ${f.out}: the output must be a .safetensors file`);
      const device = await openDevice(f);
      const { file, params } = await writeMergedLora(device, run, f.out);
      console.log(`${f.out}: ${file} merged into its base (${params.toLocaleString('en-US')} values)`);
    }),
  );
}
