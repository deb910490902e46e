// How much of a ViT-B call is the main thread recording commands while lavapipe waits. The engine
// records every dispatch into one command encoder and submits at flush() (a read, a sync, an upload
// that must see earlier work, or a full params ring), so a forward's dispatches are all recorded before
// the first one runs. This lab times the recording (until the call returns, before the sync) and the
// whole call, with the engine's batching and with a flush every N dispatches (`--every N,...`; 0 = the
// engine's default), interleaved in one process:
//
//   npx esbuild bench/lab/overlap.lab.ts --bundle --platform=node --format=esm --packages=external \
//     --outfile=node_modules/.cache/vitgpu-lab/overlap.lab.mjs && node node_modules/.cache/vitgpu-lab/overlap.lab.mjs
//
// Arguments: --case fwd|train  --every 0,16,64  --reps 5  --depth 12

import { AdamW, createNodeDevice } from '../../engine/node.js';
import { VisionTransformer, presetConfig } from '../../models/vit.js';
import { recordModelCall } from '../models.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const train = arg('case', 'fwd') === 'train';
const everies = arg('every', '0,32').split(',').map(Number);
const reps = Number(arg('reps', '5'));
const device = await createNodeDevice();
const config = presetConfig('vit-b16', { imageSize: 224, labels: 14, depth: Number(arg('depth', '12')) });
const model = new VisionTransformer(device, config, { seed: 0 });
const images = device.randn([8, 3, 224, 224], { seed: 1 });
const targets = device.tensor(Array.from({ length: 8 * 14 }, (_, i) => ((i * 7) % 3 === 0 ? 1 : 0)), [8, 14]);
const opt = train ? new AdamW(model.parameters(), { lr: 1e-5, weightDecay: 0 }) : null;

// A flush every N dispatches, by wrapping the device's dispatch (lab only).
const dev = device as unknown as { dispatch: (...a: unknown[]) => void; flush: () => void };
const dispatch = dev.dispatch.bind(device);
let every = 0;
let count = 0;
dev.dispatch = (...a: unknown[]) => {
  dispatch(...a);
  if (every && ++count % every === 0) dev.flush();
};

async function call(): Promise<[number, number]> {
  const t = performance.now();
  recordModelCall(model, images, targets, opt);
  const rec = performance.now() - t;
  await device.sync();
  return [rec, performance.now() - t];
}

await call(); // compile
const times = new Map<number, [number, number][]>(everies.map((e) => [e, []]));
for (let r = 0; r < reps; r++) {
  for (const e of everies) {
    every = e;
    times.get(e)!.push(await call());
  }
}
console.log(`${train ? 'train step' : 'forward'}, ViT-B/16 b8 224 px, depth ${config.depth}, ${reps} interleaved rounds (ms: recording / whole call)`);
for (const [e, ts] of times) {
  const med = (i: 0 | 1) => ts.map((t) => t[i]).sort((x, y) => x - y)[ts.length >> 1];
  console.log(`flush every ${String(e || 'default').padEnd(8)} median ${med(0).toFixed(0).padStart(6)} / ${med(1).toFixed(0).padStart(6)}   all: ${ts.map((t) => `${t[0].toFixed(0)}/${t[1].toFixed(0)}`).join(' ')}`);
}
process.exit(0);
