// Profiler overhead lab: a reduced-depth ViT-B/16 training step (batch 8, 224 px), timed with and
// without device.profile() in alternation, so machine load falls on both alike. Run it with
//
//   npx esbuild bench/lab/profile-overhead.lab.ts --bundle --platform=node --format=esm --packages=external \
//     --outfile=node_modules/.cache/vitgpu-lab/profile-overhead.lab.mjs && node node_modules/.cache/vitgpu-lab/profile-overhead.lab.mjs
//
// Arguments (optional): --depth 2  --reps 4  --timing timestamp|cpu  --forward (no backward or AdamW).

import { loadavg } from 'node:os';
import { AdamW, bceWithLogits, createNodeDevice, noGrad, tidy } from '../../engine/node.js';
import { VisionTransformer, presetConfig } from '../../models/vit.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

async function main(): Promise<void> {
  const depth = Number(arg('depth', '2'));
  const reps = Number(arg('reps', '4'));
  const timing = arg('timing', 'timestamp') as 'timestamp' | 'cpu';
  const forwardOnly = process.argv.includes('--forward');
  const device = await createNodeDevice();
  const model = new VisionTransformer(device, presetConfig('vit-b16', { depth, labels: 14 }), { seed: 0 });
  const images = device.randn([8, 3, 224, 224], { seed: 1 });
  const targets = device.tensor(Array.from({ length: 8 * 14 }, (_, i) => i % 3 === 0 ? 1 : 0), [8, 14]);
  const opt = new AdamW(model.parameters(), { lr: 1e-5, weightDecay: 0 });
  const call = async (): Promise<number> => {
    const t = performance.now();
    if (forwardOnly) tidy(() => noGrad(() => model.forward(images).logits!)).dispose();
    else {
      tidy(() => bceWithLogits(model.forward(images).logits!, targets).backward());
      opt.step();
      opt.zeroGrad();
    }
    await device.sync();
    return performance.now() - t;
  };
  console.log(`ViT-B/16 depth ${depth}, batch 8, ${forwardOnly ? 'forward' : 'train step'}; profile timing ${timing}; load ${loadavg()[0].toFixed(2)}`);
  await call();
  const plain: number[] = [];
  const profiled: number[] = [];
  let dispatches = 0;
  for (let i = 0; i < reps; i++) {
    // Alternate which goes first in each pair.
    for (const on of i % 2 === 0 ? [false, true] : [true, false]) {
      if (!on) {
        plain.push(await call());
        continue;
      }
      const session = device.profile({ timing });
      const ms = await call();
      const report = await session.stop();
      dispatches = report.dispatches;
      profiled.push(ms);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  console.log(`unprofiled ms: ${plain.map((x) => x.toFixed(0)).join(', ')}`);
  console.log(`profiled ms:   ${profiled.map((x) => x.toFixed(0)).join(', ')}  (${dispatches} dispatches each)`);
  console.log(`overhead: median ${((median(profiled) / median(plain) - 1) * 100).toFixed(1)}%, total ${((sum(profiled) / sum(plain) - 1) * 100).toFixed(1)}%; load ${loadavg()[0].toFixed(2)}`);
  device.destroy();
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
