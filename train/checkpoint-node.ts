// Training checkpoints on disk. One safetensors file holds everything needed to continue a run exactly:
// the weights (timm names), AdamW's moments (`optim.m.NAME`, `optim.v.NAME`) and, in __metadata__, the
// model config, the run's settings and the loop state. It is written atomically (temp file + rename),
// so a run killed at any moment leaves the previous checkpoint intact.

import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Device } from '../engine/device.js';
import type { AdamW } from '../engine/optim.js';
import { VitgpuError } from '../engine/errors.js';
import { loadVit, vitCheckpointTensors } from '../models/load.js';
import { readHeader, readTensorF32 } from '../models/safetensors.js';
import { encodeSafetensors, type TensorToWrite } from '../models/safetensors-write.js';
import { openFileSource, writeFileAtomic } from '../engine/node.js';
import type { VisionTransformer } from '../models/vit.js';
import type { TrainState } from './trainer.js';

export async function saveTrainCheckpoint(
  path: string,
  model: VisionTransformer,
  optimizer: AdamW | null,
  extra: { state?: TrainState; run?: unknown; labels: string[]; thresholds?: { values: Record<string, number | string>; epoch: number } },
): Promise<void> {
  const { tensors, metadata } = await vitCheckpointTensors(model, { labels: extra.labels.join(',') });
  const all: TensorToWrite[] = [...tensors];
  if (optimizer) {
    const names = [...model.params.keys()];
    const moments = optimizer.moments();
    for (let i = 0; i < names.length; i++) {
      const mv = moments[i];
      if (!mv) continue;
      const shape = [...mv[0].shape];
      all.push({ name: `optim.m.${names[i]}`, dtype: 'F32', shape, data: await mv[0].data() });
      all.push({ name: `optim.v.${names[i]}`, dtype: 'F32', shape, data: await mv[1].data() });
    }
    metadata.optimizer_step = String(optimizer.stepCount);
  }
  // Never write non-finite state over a good checkpoint: resuming it could only fail again.
  for (const t of all) {
    const data = t.data as Float32Array;
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) {
        throw new VitgpuError(`refusing to write ${path}: tensor ${t.name} holds a non-finite value (${data[i]} at index ${i}); the previous checkpoint is kept`);
      }
    }
  }
  if (extra.state) metadata.train_state = JSON.stringify(extra.state);
  if (extra.run) metadata.run = JSON.stringify(extra.run);
  if (extra.thresholds) {
    // The decision thresholds a run reports (Youden's, on the validation split at this epoch).
    metadata.thresholds = JSON.stringify(extra.thresholds.values);
    metadata.threshold_policy = 'youden-valid';
    metadata.threshold_epoch = String(extra.thresholds.epoch);
  }
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, encodeSafetensors(all, metadata));
}

export interface LoadedCheckpoint {
  model: VisionTransformer;
  labels: string[];
  state: TrainState | null;
  run: unknown;
  optimizerStep: number;
  /** Moments per parameter in model.params order (null where the file has none). */
  moments: ([Float32Array, Float32Array] | null)[];
}

export async function loadTrainCheckpoint(device: Device, path: string): Promise<LoadedCheckpoint> {
  const src = await openFileSource(path);
  try {
    const header = await readHeader(src);
    if (header.metadata.format !== 'vitgpu') throw new VitgpuError(`${path}: not a vitgpu checkpoint (no format=vitgpu in __metadata__)`);
    const { model } = await loadVit(device, src);
    const moments: ([Float32Array, Float32Array] | null)[] = [];
    for (const name of model.params.keys()) {
      const m = header.tensors.get(`optim.m.${name}`);
      const v = header.tensors.get(`optim.v.${name}`);
      moments.push(m && v ? [await readTensorF32(src, m), await readTensorF32(src, v)] : null);
    }
    const parse = (key: string) => {
      const s = header.metadata[key];
      if (!s) return null;
      try {
        return JSON.parse(s);
      } catch {
        throw new VitgpuError(`${path}: __metadata__.${key} is not valid JSON`);
      }
    };
    return {
      model,
      labels: (header.metadata.labels ?? '').split(',').filter(Boolean),
      state: parse('train_state'),
      run: parse('run'),
      optimizerStep: Number(header.metadata.optimizer_step ?? 0),
      moments,
    };
  } finally {
    await src.close();
  }
}
