// Adapter-only checkpoints of LoRA runs: the adapters and the trained head in PEFT's names (see
// models/lora.ts for the mapping), F32, with the LoRA settings, the model config and a reference to the
// base checkpoint in __metadata__:
//
//   format  "vitgpu-lora"
//   config  the model config (as in vitgpu checkpoints); labels: the head's label names
//   lora    {"rank", "alpha", "dropout", "targets", "base": where the frozen weights come from}
//
// The base reference is written by the runs layer (runs/model-file-node.ts): a checkpoint file with its
// SHA-256 and size, or a seeded random initialization. Browser-safe.

import type { Tensor } from '../engine/tensor.js';
import { VitgpuError } from '../engine/errors.js';
import { noGrad } from '../engine/autograd.js';
import { readTensorF32, type ByteSource, type SafetensorsHeader } from './safetensors.js';
import type { TensorToWrite } from './safetensors-write.js';
import { LoraAdapters, PEFT_PREFIX, checkLoraSettings, type LoraSettings } from './lora.js';
import type { VisionTransformer, VitConfig } from './vit.js';

export const LORA_FORMAT = 'vitgpu-lora';

export interface LoraFileInfo {
  settings: LoraSettings;
  /** Where the frozen weights come from (runs/model-file-node.ts BaseReference). */
  base: Record<string, unknown>;
  config: VitConfig;
  labels: string[];
}

/** The tensors the optimizer trains in a LoRA run, by the PEFT names they are saved under: adapters, then the head. */
export function loraTrainable(model: VisionTransformer, lora: LoraAdapters): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [name, t] of lora.params) out.set(`${PEFT_PREFIX}${name}`, t);
  for (const name of ['head.weight', 'head.bias']) out.set(`${PEFT_PREFIX}${name}`, model.param(name));
  return out;
}

/** An adapter-only checkpoint's tensors and metadata (`extra` is added to the metadata). */
export async function loraCheckpointTensors(
  model: VisionTransformer, lora: LoraAdapters, base: Record<string, unknown>, extra: Record<string, string> = {},
): Promise<{ tensors: TensorToWrite[]; metadata: Record<string, string> }> {
  const tensors: TensorToWrite[] = [];
  for (const [name, t] of loraTrainable(model, lora)) {
    tensors.push({ name, dtype: 'F32', shape: [...t.shape], data: await noGrad(() => t).data() });
  }
  const settings = lora.settings;
  return {
    tensors,
    metadata: {
      format: LORA_FORMAT,
      config: JSON.stringify(model.config),
      image_size: String(model.config.imageSize),
      lora: JSON.stringify({ rank: settings.rank, alpha: settings.alpha, dropout: settings.dropout, targets: settings.targets, base }),
      ...extra,
    },
  };
}

export function isLoraFile(metadata: Record<string, string>): boolean {
  return metadata.format === LORA_FORMAT;
}

/** The LoRA settings, base reference, config and labels of an adapter-only checkpoint. */
export function loraFileInfo(metadata: Record<string, string>, source: string): LoraFileInfo {
  const parse = (key: string) => {
    try {
      return JSON.parse(metadata[key] ?? '');
    } catch {
      throw new VitgpuError(`${source}: __metadata__.${key} of a LoRA checkpoint is missing or not valid JSON; the file is damaged`);
    }
  };
  const lora = parse('lora') as LoraSettings & { base?: Record<string, unknown> };
  const config = parse('config') as VitConfig;
  const settings: LoraSettings = { rank: lora.rank, alpha: lora.alpha, dropout: lora.dropout, targets: lora.targets };
  checkLoraSettings(settings);
  if (!lora.base || typeof lora.base !== 'object') throw new VitgpuError(`${source}: the LoRA checkpoint names no base checkpoint`);
  return { settings, base: lora.base, config, labels: (metadata.labels ?? '').split(',').filter(Boolean) };
}

/**
 * Puts an adapter-only checkpoint onto its base model: the head's values, and adapters attached to the
 * model (unmerged; LoraAdapters.mergeInto merges them). The base must have the file's head size.
 */
export async function applyLoraFile(model: VisionTransformer, src: ByteSource, header: SafetensorsHeader): Promise<LoraAdapters> {
  const info = loraFileInfo(header.metadata, src.name);
  const values = new Map<string, Float32Array>();
  for (const t of header.tensors.values()) {
    if (!t.name.startsWith(PEFT_PREFIX)) continue;
    values.set(t.name.slice(PEFT_PREFIX.length), await readTensorF32(src, t));
  }
  for (const name of ['head.weight', 'head.bias']) {
    const v = values.get(name);
    if (!v) throw new VitgpuError(`${src.name}: no ${PEFT_PREFIX}${name} in the LoRA checkpoint`);
    model.setParam(name, v);
    values.delete(name);
  }
  const lora = new LoraAdapters(model.device, model.config, info.settings);
  try {
    await lora.load(values, src.name);
  } catch (err) {
    lora.dispose();
    throw err;
  }
  model.adapters = lora;
  return lora;
}
