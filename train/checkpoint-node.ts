// Training checkpoints on disk. One safetensors file holds everything needed to continue a run exactly:
// the weights (timm names), AdamW's moments (`optim.m.NAME`, `optim.v.NAME`) and, in __metadata__, the
// model config, the run's settings and the loop state. It is written atomically (temp file + rename),
// so a run killed at any moment leaves the previous checkpoint intact.
//
// A LoRA run's checkpoints hold only what it trains (models/lora-file.ts: adapters and head, PEFT names),
// with the moments under the same names; the frozen weights come from the base checkpoint they name.

import { mkdir } from 'node:fs/promises';
import { dirname, relative } from 'node:path';
import type { Device } from '../engine/device.js';
import type { AdamW } from '../engine/optim.js';
import type { Tensor } from '../engine/tensor.js';
import { VitgpuError } from '../engine/errors.js';
import { loadVit, vitCheckpointTensors } from '../models/load.js';
import { readHeader, readTensorF32, type ByteSource, type SafetensorsHeader } from '../models/safetensors.js';
import { isLoraFile, loraCheckpointTensors } from '../models/lora-file.js';
import type { LoraAdapters } from '../models/lora.js';
import { encodeSafetensors, type TensorToWrite } from '../models/safetensors-write.js';
import { openFileSource, writeFileAtomic } from '../engine/node.js';
import type { VisionTransformer } from '../models/vit.js';
import type { TrainState } from './trainer.js';

export async function saveTrainCheckpoint(
  path: string,
  model: VisionTransformer,
  optimizer: AdamW | null,
  extra: {
    state?: TrainState; run?: unknown; labels: string[]; thresholds?: { values: Record<string, number | string>; epoch: number };
    /** The optimizer's tensors by name, in its order (default: every model parameter). */
    trainable?: ReadonlyMap<string, Tensor>;
    /** A LoRA run: write adapters and head only, naming the base checkpoint (its `file` made relative to this one's folder too). */
    lora?: { adapters: LoraAdapters; base: Record<string, unknown> };
  },
): Promise<void> {
  const labels = { labels: extra.labels.join(',') };
  let base = extra.lora?.base;
  if (base && typeof base.file === 'string') base = { ...base, relative: relative(dirname(path), base.file) };
  const { tensors, metadata } = extra.lora ? await loraCheckpointTensors(model, extra.lora.adapters, base!, labels) : await vitCheckpointTensors(model, labels);
  const all: TensorToWrite[] = [...tensors];
  if (optimizer) {
    const names = [...(extra.trainable ?? model.params).keys()];
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
  /** Moments by the names of the tensors they belong to (`optim.m.NAME`, `optim.v.NAME`). */
  moments: Map<string, [Float32Array, Float32Array]>;
  /** A LoRA run's adapters, attached to `model` (its base with the trained head), and the base's reference (where it was found). */
  lora: LoraAdapters | null;
  loraBase: Record<string, unknown> | null;
}

/** Builds a LoRA checkpoint's model: its base with the file's head and adapters attached (runs/model-file-node.ts). */
export type LoraOpener = (src: ByteSource, header: SafetensorsHeader) => Promise<{ model: VisionTransformer; lora: LoraAdapters; base: Record<string, unknown> }>;

export async function loadTrainCheckpoint(device: Device, path: string, openLora?: LoraOpener): Promise<LoadedCheckpoint> {
  const src = await openFileSource(path);
  try {
    const header = await readHeader(src);
    const lora = isLoraFile(header.metadata);
    if (header.metadata.format !== 'vitgpu' && !lora) throw new VitgpuError(`${path}: not a vitgpu checkpoint (no format=vitgpu in __metadata__)`);
    if (lora && !openLora) throw new VitgpuError(`${path}: a LoRA checkpoint, but no way to open its base was given`);
    const loaded = lora ? await openLora!(src, header) : { model: (await loadVit(device, src)).model, lora: null, base: null };
    const moments = new Map<string, [Float32Array, Float32Array]>();
    for (const m of header.tensors.values()) {
      if (!m.name.startsWith('optim.m.')) continue;
      const name = m.name.slice('optim.m.'.length);
      const v = header.tensors.get(`optim.v.${name}`);
      if (v) moments.set(name, [await readTensorF32(src, m), await readTensorF32(src, v)]);
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
      model: loaded.model,
      lora: loaded.lora,
      loraBase: loaded.base,
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
