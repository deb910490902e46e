// Loading a ViT from a safetensors checkpoint in any of the accepted namings, tensor by tensor (the
// file is never held in memory whole), and saving vitgpu's own checkpoints. Browser-safe: it reads
// through a ByteSource (a file handle in Node, a Blob or ArrayBuffer in a browser).

import type { Device } from '../engine/device.js';
import { noGrad } from '../engine/autograd.js';
import { CheckpointError, planCheckpoint, type CheckpointFormat } from './checkpoint.js';
import { readTensorF32, type ByteSource } from './safetensors.js';
import { readCheckpointHeader } from './checkpoint-file.js';
import type { TensorToWrite } from './safetensors-write.js';
import { PRESETS, VisionTransformer, parameterShapes, presetConfig, type VitConfig } from './vit.js';

export interface LoadOptions {
  /** 'auto' (read the architecture off the shapes) or a preset name the file must match. */
  arch?: string;
  /** Input size the model will run at; the stored positional grid is resized to it. */
  imageSize?: number;
  /** Number of labels of the head; a checkpoint head with another count is replaced by a new one. */
  labels?: number;
  /** Attention heads (not stored in checkpoints): default from the preset, else width / 64. */
  heads?: number;
  /** Seed for parameters the checkpoint does not provide (a new head). */
  seed?: number;
}

export interface LoadReport {
  source: string;
  format: CheckpointFormat;
  config: VitConfig;
  dtypes: Record<string, number>;
  loaded: number;
  /** Tensors in the file that were skipped (pooler, mask token, another head...). */
  unexpected: string[];
  /** Why the head is new, when it is. */
  newHead: string | null;
}

const ARCH_KEYS = ['patchSize', 'width', 'depth', 'mlpWidth', 'layerScale', 'qkvBias', 'registers', 'rope'] as const;

/** Builds a ViT from a safetensors checkpoint and reports what was loaded, skipped and replaced. */
export async function loadVit(device: Device, src: ByteSource, opts: LoadOptions = {}): Promise<{ model: VisionTransformer; report: LoadReport }> {
  const header = await readCheckpointHeader(src);
  const shapes = new Map([...header.tensors.values()].map((t) => [t.name, t.shape] as const));
  const plan = planCheckpoint(shapes, header.metadata, { imageSize: opts.imageSize, source: src.name });
  let config = plan.config;
  if (opts.arch && opts.arch !== 'auto') {
    const preset = presetConfig(opts.arch);
    const differ = ARCH_KEYS.filter((k) => preset[k] !== config[k]);
    if (differ.length) {
      throw new CheckpointError(
        `${src.name}: --arch ${opts.arch} does not match the checkpoint (${differ.map((k) => `${k}: ${preset[k]} vs ${config[k]} in the file`).join(', ')})`,
      );
    }
    config = { ...config, name: opts.arch, heads: preset.heads, eps: plan.format === 'hf-vit' ? config.eps : preset.eps };
  } else if (PRESETS[config.name]) {
    config = { ...config, heads: PRESETS[config.name].heads };
  }
  if (opts.heads !== undefined) config = { ...config, heads: opts.heads };
  let newHead: string | null = null;
  const fileLabels = config.labels;
  if (opts.labels !== undefined && opts.labels !== fileLabels) {
    newHead = fileLabels ? `checkpoint head has ${fileLabels} labels, ${opts.labels} requested` : `checkpoint has no head; ${opts.labels} labels requested`;
    config = { ...config, labels: opts.labels };
  }
  const skipHead = newHead !== null;

  const wanted = parameterShapes(config).filter(([n]) => !(skipHead && n.startsWith('head.')));
  const missing = wanted.filter(([n]) => !plan.entries.has(n)).map(([n]) => n);
  if (missing.length) {
    throw new CheckpointError(`${src.name} (${plan.format} naming): missing weights: ${missing.join(', ')}`);
  }
  const unexpected = [...plan.unexpected];
  if (skipHead) for (const n of ['head.weight', 'head.bias']) if (plan.entries.has(n)) unexpected.push(...plan.entries.get(n)!.sources);

  const fromFile = new Set(wanted.map(([n]) => n));
  const model = new VisionTransformer(device, config, { seed: opts.seed, uninitialized: (n) => fromFile.has(n) });
  const dtypes: Record<string, number> = {};
  let pendingBytes = 0;
  try {
    for (const [name, shape] of wanted) {
      const entry = plan.entries.get(name)!;
      const infos = entry.sources.map((s) => header.tensors.get(s)!);
      // Shapes are compared exactly, not only by size: [64, 192] where [192, 64] is expected would load
      // transposed weights silently. Split sources (HF query/key/value) stack along axis 0.
      const zero = entry.zeroRows;
      const stacked = [infos.reduce((n, t) => n + (t.shape[0] ?? 0), zero?.rows ?? 0), ...infos[0].shape.slice(1)];
      const sameTail = infos.every((t) => t.shape.length === infos[0].shape.length && t.shape.slice(1).every((d, i) => d === infos[0].shape[i + 1]));
      if (!sameTail || stacked.length !== shape.length || stacked.some((d, i) => d !== shape[i])) {
        const got = infos.map((t) => `${t.name} [${t.shape.join(', ')}]`).join(' + ');
        throw new CheckpointError(`${src.name}: ${got} does not fit ${name} [${shape.join(', ')}] of a ${config.name} model`);
      }
      const parts: Float32Array[] = [];
      for (const info of infos) {
        dtypes[info.dtype] = (dtypes[info.dtype] ?? 0) + 1;
        parts.push(await readTensorF32(src, info));
      }
      if (zero) parts.splice(zero.at, 0, new Float32Array(zero.rows * infos[0].shape.slice(1).reduce((a, b) => a * b, 1)));
      const values = parts.length === 1 ? parts[0] : concatF32(parts);
      const bad = firstNonFinite(values);
      if (bad >= 0) {
        const count = values.reduce((n, v) => n + (Number.isFinite(v) ? 0 : 1), 0);
        throw new CheckpointError(
          `${src.name}: ${name} holds ${count} non-finite value(s) (${values[bad]} at index ${bad}); the checkpoint is damaged or comes from a run that diverged`,
        );
      }
      model.setParam(name, values);
      // The queue copies each write into staging memory until it runs: let it drain now and then so
      // loading holds about one extra tensor, not a second copy of the model.
      pendingBytes += values.byteLength;
      if (pendingBytes > 32 * 2 ** 20) {
        await device.sync();
        pendingBytes = 0;
      }
    }
    await device.sync();
  } catch (err) {
    model.dispose();
    throw err;
  }
  return {
    model,
    report: { source: src.name, format: plan.format, config, dtypes, loaded: wanted.length, unexpected: [...new Set(unexpected)].sort(), newHead },
  };
}

function firstNonFinite(a: Float32Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] - a[i] !== 0) return i; // NaN and ±Infinity give NaN
  return -1;
}

function concatF32(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** vitgpu's own checkpoint: timm names, F32, and the config (plus anything in `extra`) in __metadata__. */
export async function vitCheckpointTensors(model: VisionTransformer, extra: Record<string, string> = {}): Promise<{
  tensors: TensorToWrite[];
  metadata: Record<string, string>;
}> {
  const tensors: TensorToWrite[] = [];
  for (const [name, p] of model.params) {
    tensors.push({ name, dtype: 'F32', shape: [...p.shape], data: await noGrad(() => p).data() });
  }
  return {
    tensors,
    metadata: { format: 'vitgpu', config: JSON.stringify(model.config), image_size: String(model.config.imageSize), ...extra },
  };
}
