// Writes the demo's synthetic radiograph dataset to disk as a real user's would look: PNG files (8-bit
// and 16-bit grayscale, larger than the model's input so the resize path runs) and a master-list CSV.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encode } from 'fast-png';
import { DEMO_LABELS, syntheticDataset, type SplitFractions } from '../datasets/synthetic.js';

export async function writeSyntheticDataset(dir: string, opts: { images: number; size: number; seed: number; fractions?: SplitFractions }): Promise<string> {
  await mkdir(join(dir, 'images'), { recursive: true });
  const samples = syntheticDataset(opts.images, opts.size, opts.seed, opts.fractions);
  const lines = [`image,split,${DEMO_LABELS.join(',')}`];
  for (const [i, s] of samples.entries()) {
    const sixteen = i % 2 === 1;
    const max = sixteen ? 65535 : 255;
    const data = sixteen ? new Uint16Array(s.image.length) : new Uint8Array(s.image.length);
    for (let k = 0; k < data.length; k++) data[k] = Math.round(s.image[k] * max);
    await writeFile(join(dir, 'images', s.name), encode({ width: opts.size, height: opts.size, data, channels: 1, depth: sixteen ? 16 : 8 }));
    lines.push(`images/${s.name},${s.split},${s.labels.join(',')}`);
  }
  const csv = join(dir, 'master_list.csv');
  await writeFile(csv, `${lines.join('\n')}\n`);
  return csv;
}
