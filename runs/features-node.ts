// Frozen features (Node): a backbone's embeddings of a split, extracted once without augmentation and
// stored as safetensors, and a batch source that serves them to the trainer in the order the image
// loader would (a linear probe then trains the head alone, without running the backbone).
//
//   DIR/<split>.safetensors
//     cls         [N, D]  final-norm CLS token (what `vitgpu embed` prints, what the head reads)
//     patch_mean  [N, D]  mean of the final-norm patch tokens (registers left out)
//     labels      [N, L]  1 / 0, NaN where ignored
//     __metadata__: format "vitgpu-features", split, paths (JSON, the row order), label_names,
//                   image_size, normalize, filter, source (the weights: SHA-256 and size of the file,
//                   or a random initialization's arch and seed)

import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Device } from '../engine/device.js';
import { VitgpuError } from '../engine/errors.js';
import { noGrad } from '../engine/autograd.js';
import { tidy } from '../engine/scope.js';
import { openFileSource, writeFileAtomic } from '../engine/node.js';
import { epochOrder } from '../datasets/augment.js';
import type { Batch, BatchSource } from '../datasets/batch.js';
import type { Sample } from '../datasets/dataset.js';
import type { ImagePool } from '../datasets/image-pool-node.js';
import { readHeader, readTensorF32 } from '../models/safetensors.js';
import { encodeSafetensors } from '../models/safetensors-write.js';
import type { VisionTransformer } from '../models/vit.js';
import type { DataOptions, TrainOptions } from './config.js';
import { splitLoader } from './data-node.js';

export interface SplitFeatures {
  cls: Float32Array;
  patchMean: Float32Array;
  labels: Float32Array;
  paths: string[];
  width: number;
}

/** What the features were computed with; features are reused only where all of it matches. */
export interface FeatureKey {
  source: unknown;
  imageSize: number;
  normalize: string;
  filter: string;
}

/** Embeddings of `samples` in their order (no augmentation), batch by batch through the frozen model. */
export async function extractFeatures(
  model: VisionTransformer, samples: Sample[], data: DataOptions, imageRoot: string, batchSize: number, pool: ImagePool,
): Promise<SplitFeatures> {
  const c = model.config;
  const d = c.width;
  const patches = (c.imageSize / c.patchSize) ** 2;
  const loader = splitLoader(samples, data, imageRoot, c.imageSize, batchSize, pool, null);
  const cls = new Float32Array(samples.length * d);
  const patchMean = new Float32Array(samples.length * d);
  const labelCount = samples[0]?.labels.length ?? 0;
  const labels = new Float32Array(samples.length * labelCount);
  const paths: string[] = [];
  let row = 0;
  try {
    for await (const batch of loader.epoch(0)) {
      const out = noGrad(() =>
        tidy(() => {
          const s = c.imageSize;
          const { embedding, tokens } = model.forward(model.device.tensor(batch.images, [batch.size, 3, s, s]));
          const start = tokens.shape[1] - patches; // after the CLS and any register tokens
          return { embedding, mean: tokens.narrow(1, start, patches).mean(1) };
        }),
      );
      cls.set(await out.embedding.data(), row * d);
      patchMean.set(await out.mean.data(), row * d);
      out.embedding.dispose();
      out.mean.dispose();
      labels.set(batch.labels, row * labelCount);
      paths.push(...batch.paths);
      row += batch.size;
    }
  } finally {
    await loader.close();
  }
  return { cls, patchMean, labels, paths, width: d };
}

export async function writeFeatures(file: string, split: string, f: SplitFeatures, labelNames: readonly string[], key: FeatureKey): Promise<void> {
  const n = f.paths.length;
  await writeFileAtomic(file, encodeSafetensors([
    { name: 'cls', dtype: 'F32', shape: [n, f.width], data: f.cls },
    { name: 'patch_mean', dtype: 'F32', shape: [n, f.width], data: f.patchMean },
    { name: 'labels', dtype: 'F32', shape: [n, labelNames.length], data: f.labels },
  ], {
    format: 'vitgpu-features',
    split,
    paths: JSON.stringify(f.paths),
    label_names: labelNames.join(','),
    image_size: String(key.imageSize),
    normalize: key.normalize,
    filter: key.filter,
    source: JSON.stringify(key.source),
  }));
}

/**
 * The CLS features of `samples` from a features file, in the samples' order; or why they cannot be used
 * (another model or preprocessing, or images the file lacks).
 */
export async function readFeaturesFor(file: string, samples: readonly Sample[], key: FeatureKey): Promise<{ cls: Float32Array; width: number } | string> {
  if (!(await stat(file).catch(() => null))) return `${file} does not exist`;
  const src = await openFileSource(file);
  try {
    const h = await readHeader(src);
    const m = h.metadata;
    if (m.format !== 'vitgpu-features') return `${file} is not a vitgpu features file`;
    const sameSource = JSON.stringify(JSON.parse(m.source ?? 'null')) === JSON.stringify(key.source);
    if (!sameSource) return `${file} holds features of other weights (${m.source})`;
    if (Number(m.image_size) !== key.imageSize || m.normalize !== key.normalize || m.filter !== key.filter) {
      return `${file} was made at ${m.image_size} px, --normalize ${m.normalize}, --resize ${m.filter} (the run: ${key.imageSize} px, ${key.normalize}, ${key.filter})`;
    }
    const info = h.tensors.get('cls');
    if (!info) return `${file} has no cls tensor`;
    const width = info.shape[1];
    const all = await readTensorF32(src, info);
    const rowOf = new Map((JSON.parse(m.paths) as string[]).map((p, i) => [p, i] as const));
    const cls = new Float32Array(samples.length * width);
    for (let i = 0; i < samples.length; i++) {
      const r = rowOf.get(samples[i].path);
      if (r === undefined) return `${file} has no features for ${samples[i].path}`;
      cls.set(all.subarray(r * width, (r + 1) * width), i * width);
    }
    return { cls, width };
  } finally {
    await src.close();
  }
}

/** Batches of cached embeddings in the order (seed, epoch) gives the image loader (datasets/batch-loader-node.ts). */
export class FeatureSource implements BatchSource {
  readonly batchesPerEpoch: number;
  readonly samples: number;

  constructor(
    private readonly items: readonly Sample[], private readonly cls: Float32Array, private readonly width: number,
    private readonly batchSize: number, private readonly training: TrainOptions | null,
  ) {
    this.samples = items.length;
    this.batchesPerEpoch = Math.ceil(items.length / batchSize);
  }

  dataWaitSeconds(): number {
    return 0;
  }

  async *epoch(epoch: number, startBatch = 0): AsyncIterable<Batch> {
    const n = this.items.length;
    const order = this.training ? epochOrder(n, this.training.seed, epoch) : Uint32Array.from({ length: n }, (_, i) => i);
    const labelCount = this.items[0]?.labels.length ?? 0;
    for (let b = startBatch; b < this.batchesPerEpoch; b++) {
      const idx = Array.from(order.subarray(b * this.batchSize, Math.min(n, (b + 1) * this.batchSize)));
      const features = new Float32Array(idx.length * this.width);
      const labels = new Float32Array(idx.length * labelCount);
      idx.forEach((i, k) => {
        features.set(this.cls.subarray(i * this.width, (i + 1) * this.width), k * this.width);
        labels.set(this.items[i].labels, k * labelCount);
      });
      yield { images: new Float32Array(0), features, labels, paths: idx.map((i) => this.items[i].path), rows: idx.map((i) => this.items[i].row), index: b, size: idx.length };
    }
  }
}

/** What identifies the weights features come from: a file's SHA-256 and size, or a random initialization. */
export function featureSource(base: { init?: string; arch?: string; seed?: number; sha256?: string; bytes?: number }): unknown {
  return base.sha256 ? { sha256: base.sha256, bytes: base.bytes } : { init: 'random', arch: base.arch, seed: base.seed };
}

/** The features folder of a run's --features setting ('auto': RUN/features), or null for 'off'. */
export function featuresDir(setting: string | undefined, runDir: string): string | null {
  if (setting === 'off') return null;
  return !setting || setting === 'auto' ? join(runDir, 'features') : setting;
}

/**
 * Sources of cached features for a frozen-backbone run's splits: read where they match, else (only for
 * the run's own folder, `auto`) extracted with `model` and written for the next time.
 */
export async function featureSources(
  model: VisionTransformer, splits: { train: Sample[]; valid: Sample[] }, opts: {
    dir: string; auto: boolean; key: FeatureKey; labels: readonly string[]; data: DataOptions; imageRoot: string; train: TrainOptions; pool: ImagePool; info: (m: string) => void;
  },
): Promise<{ train: FeatureSource; valid: FeatureSource }> {
  const sources: Partial<Record<'train' | 'valid', FeatureSource>> = {};
  for (const split of ['train', 'valid'] as const) {
    const file = join(opts.dir, `${split}.safetensors`);
    let got = await readFeaturesFor(file, splits[split], opts.key);
    if (typeof got === 'string') {
      if (!opts.auto) throw new VitgpuError(`--features ${opts.dir}: ${got}; make them with \`vitgpu features\` from the run's --init and data, or pass --features auto`);
      opts.info(`extracting ${split} features (${splits[split].length} images) into ${file}`);
      const f = await extractFeatures(model, splits[split], opts.data, opts.imageRoot, opts.train.batchSize, opts.pool);
      await mkdir(opts.dir, { recursive: true });
      await writeFeatures(file, split, f, opts.labels, opts.key);
      got = { cls: f.cls, width: f.width };
    } else {
      opts.info(`${split} features: ${file}`);
    }
    sources[split] = new FeatureSource(splits[split], got.cls, got.width, opts.train.batchSize, split === 'train' ? opts.train : null);
  }
  return sources as { train: FeatureSource; valid: FeatureSource };
}
