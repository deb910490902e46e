// `vitgpu devices`: the adapters Dawn sees and the device vitgpu would use, with its features, subgroup
// sizes (they pick kernel variants: kernels/*-plan.ts) and limits.

import type { Command } from 'commander';
import { listAdapters } from '../engine/node.js';
import { action, openDevice, withDeviceOptions, type DeviceFlags } from './run.js';
import { WANTED_FEATURES } from '../engine/device.js';
import { tunerOf } from '../kernels/tuners.js';

export function registerDevices(program: Command): void {
  withDeviceOptions(
    program
      .command('devices')
      .description('list WebGPU adapters and report the device vitgpu uses')
      .option('--json', 'print one JSON object'),
  ).action(
    action(async (opts: DeviceFlags & { json?: boolean }) => {
      const adapters = await listAdapters();
      const device = await openDevice(opts);
      const tuner = tunerOf(device);
      const tuning = tuner && { policy: tuner.policy, cache: tuner.store.where, storedShapeClasses: Object.keys(tuner.store.load(tuner.adapter)).length };
      if (opts.json) {
        console.log(JSON.stringify({ adapters, selected: device.name, info: device.info, subgroups: device.subgroups, tuning }, null, 2));
        return;
      }
      console.log('Adapters:');
      for (const a of adapters) console.log(`  ${a.backend.padEnd(8)} ${a.name}`);
      console.log(`\nUsing: ${device.name}${device.info.isFallbackAdapter ? ' (fallback/software adapter)' : ''}`);
      const missing = WANTED_FEATURES.filter((f) => !device.info.features.includes(f));
      console.log(`Features: ${device.info.features.join(', ') || 'none'}${missing.length ? ` (not available: ${missing.join(', ')})` : ''}`);
      const sg = device.subgroups;
      console.log(`Subgroup sizes: ${sg ? (sg.minSize === sg.maxSize ? `${sg.minSize}` : `${sg.minSize} to ${sg.maxSize}`) : 'none (no subgroups)'}`);
      if (tuning) console.log(`Kernel tuning: policy ${tuning.policy} (VITGPU_TUNE), ${tuning.storedShapeClasses} shape classes tuned for this adapter in ${tuning.cache} (vitgpu tune)`);
      console.log('Limits:');
      for (const [k, v] of Object.entries(device.info.limits)) console.log(`  ${k.padEnd(36)} ${v}`);
      console.log('\nPick another adapter with --adapter NAME or VITGPU_ADAPTER=NAME (a substring of its name).');
    }),
  );
}
