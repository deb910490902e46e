// `vitgpu demo` (what `npm start` runs): reports the device and runs a short engine check with
// timings. The fine-tuning demo replaces this once training exists.

import type { Command } from 'commander';
import { tidy } from '../engine/index.js';
import { action, openDevice, withDeviceOptions, type DeviceFlags } from './run.js';

export function registerDemo(program: Command): void {
  withDeviceOptions(program.command('demo').description('report the device and run a short engine check')).action(
    action(async (opts: DeviceFlags) => {
      const device = await openDevice(opts);
      console.log(`vitgpu on ${device.name}`);
      console.log(`features: ${device.info.features.join(', ') || 'none'}`);
      const n = 512;
      const a = device.randn([n, n], { seed: 1 });
      const b = device.randn([n, n], { seed: 2 });
      await tidy(() => a.matmul(b)).data(); // warm-up: builds the pipeline
      const reps = 5;
      const t0 = performance.now();
      let c = a.matmul(b);
      for (let i = 1; i < reps; i++) {
        c.dispose();
        c = a.matmul(b);
      }
      await c.data();
      const ms = (performance.now() - t0) / reps;
      console.log(`matmul ${n}x${n}x${n}: ${ms.toFixed(1)} ms (${((2 * n ** 3) / ms / 1e6).toFixed(2)} GFLOP/s)`);
      // A check against the CPU: row 0 of a·b.
      const [av, bv, cv] = await Promise.all([a.data(), b.data(), c.data()]);
      let worst = 0;
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += av[k] * bv[k * n + j];
        worst = Math.max(worst, Math.abs(s - cv[j]));
      }
      console.log(`max |GPU - CPU| on row 0: ${worst.toExponential(2)}`);
      const mem = device.memory();
      console.log(`GPU memory: ${(mem.liveBytes / 2 ** 20).toFixed(1)} MiB live, ${(mem.peakBytes / 2 ** 20).toFixed(1)} MiB peak`);
      if (worst > 1e-3) throw new Error(`matmul disagrees with the CPU (max error ${worst})`);
    }),
  );
}
