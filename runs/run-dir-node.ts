// A run directory (Node): where each of its files lives, its stored settings, and its model.
//
//   RUN_DIR/config.json                 the run's settings (data, model, training) and labels
//   RUN_DIR/log.jsonl                   one JSON line per epoch
//   RUN_DIR/best.safetensors            the weights with the best validation AUC (vitgpu format; a LoRA
//                                       run's: adapters + head, naming its base: models/lora-file.ts)
//   RUN_DIR/last/checkpoint.safetensors weights (or adapters + head) + optimizer moments + loop state
//   RUN_DIR/summary.json                written when the run ends

import { join } from 'node:path';
import type { Device } from '../engine/device.js';
import { VitgpuError } from '../engine/errors.js';
import { openFileSource } from '../engine/node.js';
import { loadModelFile } from './model-file-node.js';
import { readHeader } from '../models/safetensors.js';
import type { VisionTransformer } from '../models/vit.js';
import type { RunConfig } from './config.js';

export const runFiles = (runDir: string) => ({
  config: join(runDir, 'config.json'),
  log: join(runDir, 'log.jsonl'),
  best: join(runDir, 'best.safetensors'),
  last: join(runDir, 'last', 'checkpoint.safetensors'),
  summary: join(runDir, 'summary.json'),
});

/** The run settings and labels stored with a run's best checkpoint. */
export async function runSettings(runDir: string): Promise<{ file: string; config: RunConfig; labels: string[]; thresholds: Float64Array | null }> {
  const file = runFiles(runDir).best;
  const src = await openFileSource(file).catch((err: NodeJS.ErrnoException) => {
    throw new VitgpuError(`${runDir}: no best.safetensors (${err.code ?? err.message}); is this a vitgpu run directory?`);
  });
  try {
    const h = await readHeader(src);
    if (!h.metadata.run) throw new VitgpuError(`${file}: no run settings in __metadata__ (not written by vitgpu train)`);
    let config: RunConfig;
    try {
      config = JSON.parse(h.metadata.run) as RunConfig;
    } catch (err) {
      throw new VitgpuError(`${file}: __metadata__.run is not valid JSON (${(err as Error).message}); the checkpoint is damaged`);
    }
    if (!config?.data || !config.model) throw new VitgpuError(`${file}: __metadata__.run lacks the run's data or model settings; the checkpoint is damaged`);
    const labels = (h.metadata.labels ?? '').split(',').filter(Boolean);
    return { file, config, labels, thresholds: storedThresholds(h.metadata, labels, file) };
  } finally {
    await src.close();
  }
}

/** The validation thresholds a run stored with its best weights (label order), or null for runs made before them. */
function storedThresholds(metadata: Record<string, string>, labels: string[], file: string): Float64Array | null {
  if (!metadata.thresholds) return null;
  let values: Record<string, unknown>;
  try {
    values = JSON.parse(metadata.thresholds) as Record<string, unknown>;
  } catch (err) {
    throw new VitgpuError(`${file}: __metadata__.thresholds is not valid JSON (${(err as Error).message}); the checkpoint is damaged`);
  }
  return Float64Array.from(labels, (l) => {
    const v = values?.[l];
    if (v === undefined) throw new VitgpuError(`${file}: __metadata__.thresholds has no threshold for label ${l}`);
    return Number(v);
  });
}

/**
 * The model in a vitgpu checkpoint file (a run's best.safetensors): full weights, or a LoRA run's
 * adapters merged into their base (runs/model-file-node.ts).
 */
export function loadRunModel(device: Device, file: string): Promise<VisionTransformer> {
  return loadModelFile(device, file);
}
