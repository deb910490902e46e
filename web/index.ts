// The browser page: load a safetensors checkpoint and an image chosen by the user, run the ViT on the
// browser's WebGPU with the same engine modules the command line uses, and show the embedding and
// per-label probabilities.

import { createDevice, type Device } from '../engine/index.js';
import { loadVit } from '../models/load.js';
import { blobSource } from '../models/safetensors.js';
import { predictImage } from '../models/predict.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const log = (line: string) => {
  $('log').textContent += `${line}\n`;
};

let device: Promise<Device> | null = null;

async function run(): Promise<void> {
  const weights = $<HTMLInputElement>('weights').files?.[0];
  const image = $<HTMLInputElement>('image').files?.[0];
  if (!weights || !image) {
    log('Choose a checkpoint and an image first.');
    return;
  }
  device ??= createDevice(navigator.gpu);
  const dev = await device;
  log(`WebGPU adapter: ${dev.name}`);
  const sizeField = Number($<HTMLInputElement>('size').value);
  const t0 = performance.now();
  const headsField = Number($<HTMLInputElement>('heads').value);
  const { model, report } = await loadVit(dev, blobSource(weights, weights.name), {
    imageSize: sizeField > 0 ? sizeField : undefined,
    heads: headsField > 0 ? headsField : undefined,
  });
  log(`${weights.name}: ${report.format} naming, ${report.config.name}, ${report.loaded} tensors (${Object.entries(report.dtypes).map(([k, v]) => `${v} ${k}`).join(', ')}) in ${(performance.now() - t0).toFixed(0)} ms`);
  if (report.unexpected.length) log(`not used: ${report.unexpected.join(', ')}`);
  try {
    const size = model.config.imageSize;
    const bytes = new Uint8Array(await image.arrayBuffer());
    $('preview').innerHTML = '';
    const preview = document.createElement('img');
    preview.src = URL.createObjectURL(image);
    $('preview').append(preview);
    const t1 = performance.now();
    const { embedding: emb, probabilities } = await predictImage(model, bytes, image.name, { normalize: 'none' });
    const probs = probabilities ? Array.from(probabilities) : null;
    log(`forward at ${size} px: ${(performance.now() - t1).toFixed(0)} ms`);
    const metaLabels = $<HTMLInputElement>('labels').value.split(',').map((s) => s.trim()).filter(Boolean);
    const rows = probs
      ? probs.map((p, j) => `<tr><td>${metaLabels[j] ?? `label ${j}`}</td><td>${p.toFixed(4)}</td></tr>`).join('')
      : '<tr><td colspan="2">no classification head: features only</td></tr>';
    $('result').innerHTML = `<h2>Result</h2><table><tr><th>label</th><th>probability</th></tr>${rows}</table>
      <p>Embedding (final-norm CLS, ${emb.length} values): ${Array.from(emb.slice(0, 6), (v) => v.toFixed(4)).join(', ')}, …</p>`;
    (window as unknown as { __vitgpuPage: unknown }).__vitgpuPage = { embedding: Array.from(emb), probabilities: probs };
  } finally {
    model.dispose();
  }
}

$('run').addEventListener('click', () => {
  run().catch((err) => log(`error: ${(err as Error).message ?? err}`));
});
