// The model a checkpoint file gives (Node): a full checkpoint in any naming, or a LoRA run's
// adapter-only checkpoint on its base, which is found again and verified unchanged (same size and
// SHA-256) before it is used. Also a run's initialization (--init) and the base reference a LoRA run
// stores.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Device } from '../engine/device.js';
import { VitgpuError } from '../engine/errors.js';
import { openFileSource, writeFileAtomic } from '../engine/node.js';
import { encodeSafetensors } from '../models/safetensors-write.js';
import { planCheckpoint } from '../models/checkpoint.js';
import { loadVit, vitCheckpointTensors, type LoadOptions } from '../models/load.js';
import { readCheckpointHeader } from '../models/checkpoint-file.js';
import type { ByteSource, SafetensorsHeader } from '../models/safetensors.js';
import { applyLoraFile, isLoraFile, loraFileInfo } from '../models/lora-file.js';
import { freezeBackbone, type LoraAdapters } from '../models/lora.js';
import { VisionTransformer, presetConfig, validateConfig, PRESETS, type VitConfig } from '../models/vit.js';
import type { ModelOptions, Reporter } from './config.js';

/** Where a LoRA run's frozen weights come from: a seeded random initialization, or a checkpoint file. */
export type BaseReference =
  | { init: 'random'; arch: string; seed: number }
  | { file: string; relative?: string; bytes: number; sha256: string; arch: string; seed: number };

/** The checkpoint file an --init names: a file, or a run directory's best.safetensors. */
export async function initFile(init: string): Promise<string> {
  const st = await stat(init).catch(() => null);
  if (!st) throw new VitgpuError(`--init ${init}: no such file or run directory`);
  return st.isDirectory() ? join(init, 'best.safetensors') : init;
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** The base reference of a run initialized from `m` (hashing the checkpoint file). */
export async function baseReference(m: ModelOptions, seed: number): Promise<BaseReference> {
  if (m.init === 'random') return { init: 'random', arch: m.arch, seed };
  const file = resolve(await initFile(m.init));
  return { file, bytes: (await stat(file)).size, sha256: await sha256File(file), arch: m.arch, seed };
}

/**
 * Checks the architecture and image size before any image is read or any folder is made: the preset
 * exists, or the checkpoint can be read and matches --arch, and the image size is a multiple of the
 * patch size.
 */
export async function checkModelOptions(m: ModelOptions): Promise<void> {
  let config: VitConfig;
  if (m.init === 'random') {
    config = presetConfig(m.arch, { imageSize: m.imageSize, ...(m.heads ? { heads: m.heads } : {}) });
  } else {
    const file = await initFile(m.init);
    const src = await openFileSource(file);
    try {
      const header = await readCheckpointHeader(src);
      const fileConfig = isLoraFile(header.metadata)
        ? loraFileInfo(header.metadata, file).config
        : planCheckpoint(new Map([...header.tensors.values()].map((t) => [t.name, t.shape] as const)), header.metadata, { imageSize: m.imageSize, source: file }).config;
      config = { ...fileConfig, imageSize: m.imageSize, ...(m.heads ? { heads: m.heads } : {}) };
      if (m.arch !== 'auto' && !PRESETS[m.arch]) presetConfig(m.arch); // throws, naming the known ones
    } finally {
      await src.close();
    }
  }
  try {
    validateConfig(config);
  } catch (err) {
    throw new VitgpuError(`--image-size ${m.imageSize} with ${m.init === 'random' ? `--arch ${m.arch}` : m.init}: ${(err as Error).message.replace(/^ViT config "[^"]*": /, '')}`);
  }
}

/** The base file a LoRA checkpoint names, where it is now (its path, else relative to the checkpoint), verified unchanged. */
async function locateBase(base: Extract<BaseReference, { file: string }>, checkpoint: string): Promise<string> {
  const candidates = [base.file, ...(base.relative ? [resolve(dirname(checkpoint), base.relative)] : [])];
  for (const c of candidates) {
    const st = await stat(c).catch(() => null);
    if (!st?.isFile()) continue;
    if (st.size !== base.bytes || (await sha256File(c)) !== base.sha256) {
      throw new VitgpuError(`${checkpoint}: its base checkpoint ${c} changed since the adapters were trained (SHA-256 ${base.sha256.slice(0, 12)}…, ${base.bytes} bytes expected); the adapters only make sense on the weights they were trained on`);
    }
    return c;
  }
  throw new VitgpuError(`${checkpoint}: its base checkpoint ${base.file} is not there any more${base.relative ? ` (nor at ${base.relative} relative to it)` : ''}; put it back, or merge the adapters where it is (vitgpu merge-lora)`);
}

/** A LoRA checkpoint's model: the base (verified), the file's head, and the adapters attached unmerged; the backbone frozen. */
export async function openLoraCheckpoint(device: Device, src: ByteSource, header: SafetensorsHeader): Promise<{ model: VisionTransformer; lora: LoraAdapters; base: BaseReference }> {
  const info = loraFileInfo(header.metadata, src.name);
  let base = info.base as BaseReference;
  let model: VisionTransformer;
  if ('init' in base && base.init === 'random') {
    model = new VisionTransformer(device, { ...info.config }, { seed: base.seed });
  } else if ('file' in base && typeof base.file === 'string') {
    const file = await locateBase(base, src.name);
    base = { ...base, file: resolve(file) };
    delete base.relative;
    const c = info.config;
    model = await loadModelFile(device, file, { arch: base.arch, imageSize: c.imageSize, labels: c.labels, heads: c.heads, seed: base.seed });
  } else {
    throw new VitgpuError(`${src.name}: the LoRA checkpoint's base reference is not understood (${JSON.stringify(base)})`);
  }
  try {
    const lora = await applyLoraFile(model, src, header);
    freezeBackbone(model);
    return { model, lora, base };
  } catch (err) {
    model.dispose();
    throw err;
  }
}

/**
 * The model in a checkpoint file: any naming vitgpu reads, or a LoRA run's adapter-only checkpoint,
 * merged into its base (a plain model with every parameter trainable).
 */
export async function loadModelFile(device: Device, file: string, opts: LoadOptions = {}): Promise<VisionTransformer> {
  const src = await openFileSource(file);
  try {
    const header = await readCheckpointHeader(src);
    if (!isLoraFile(header.metadata)) return (await loadVit(device, src, opts)).model;
    const { model, lora } = await openLoraCheckpoint(device, src, header);
    await lora.mergeInto(model);
    model.adapters = null;
    lora.dispose();
    for (const t of model.params.values()) t.requireGrad();
    if (opts.labels !== undefined && opts.labels !== model.config.labels) model.resetHead(opts.labels, opts.seed ?? 0);
    return model;
  } finally {
    await src.close();
  }
}

/** The model a run starts from. */
export async function initModel(device: Device, m: ModelOptions, labels: number, seed: number, reporter: Reporter): Promise<VisionTransformer> {
  if (m.init === 'random') {
    reporter.info(`initialization: random (${m.arch})`);
    return new VisionTransformer(device, presetConfig(m.arch, { labels, imageSize: m.imageSize, ...(m.heads ? { heads: m.heads } : {}) }), { seed });
  }
  const file = await initFile(m.init);
  const src = await openFileSource(file);
  try {
    const header = await readCheckpointHeader(src);
    if (isLoraFile(header.metadata)) {
      reporter.info(`initialization: ${file} (LoRA adapters merged into their base)`);
      return await loadModelFile(device, file, { imageSize: m.imageSize, labels, seed });
    }
    const { model, report } = await loadVit(device, src, { arch: m.arch, imageSize: m.imageSize, labels, seed, heads: m.heads });
    reporter.info(`initialization: ${file} (${report.format} naming, ${report.config.name}${report.newHead ? `; new head: ${report.newHead}` : ''})`);
    if (report.unexpected.length) reporter.info(`  not used: ${report.unexpected.slice(0, 6).join(', ')}${report.unexpected.length > 6 ? ', …' : ''}`);
    return model;
  } finally {
    await src.close();
  }
}

/**
 * `vitgpu merge-lora`: a LoRA run's adapters (its best.safetensors, or the file given) merged into its
 * base and written as a full vitgpu checkpoint, with the labels and validation thresholds it stored.
 */
export async function writeMergedLora(device: Device, runOrFile: string, out: string): Promise<{ file: string; params: number }> {
  const file = (await stat(runOrFile).catch(() => null))?.isDirectory() ? join(runOrFile, 'best.safetensors') : runOrFile;
  const src = await openFileSource(file);
  let metadata: Record<string, string>;
  try {
    metadata = (await readCheckpointHeader(src)).metadata;
  } finally {
    await src.close();
  }
  if (!isLoraFile(metadata)) throw new VitgpuError(`${file}: not a LoRA checkpoint (its weights are already full; nothing to merge)`);
  const model = await loadModelFile(device, file);
  try {
    const keepKeys = ['labels', 'thresholds', 'threshold_policy', 'threshold_epoch', 'run'];
    const extra = Object.fromEntries(keepKeys.filter((k) => metadata[k] !== undefined).map((k) => [k, metadata[k]]));
    const { tensors, metadata: meta } = await vitCheckpointTensors(model, { ...extra, merged_from: resolve(file) });
    await writeFileAtomic(out, encodeSafetensors(tensors, meta));
    return { file, params: tensors.reduce((n, t) => n + t.data.length, 0) };
  } finally {
    model.dispose();
  }
}
