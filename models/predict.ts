// The one path from images to probabilities, browser-safe: image bytes are preprocessed exactly as the
// training batches were (datasets/preprocess.ts), run through the model without a graph, and the head's
// logits become per-label sigmoid probabilities. `vitgpu predict`, `embed`, evaluation of runs and the
// browser page all use it.

import { noGrad } from '../engine/autograd.js';
import { tidy } from '../engine/scope.js';
import type { Tensor } from '../engine/tensor.js';
import type { Batch, BatchSource } from '../datasets/batch.js';
import type { Normalize, ResizeFilter } from '../datasets/image.js';
import { preprocessImage } from '../datasets/preprocess.js';
import { dicomNeedsCodecs, parseDicomWindow } from '../datasets/dicom.js';
import { loadDicomCodecs } from '../datasets/dicom-codecs.js';
import { linear } from '../engine/ops/matmul.js';
import type { VisionTransformer } from './vit.js';

/** How a model's inputs are made from image files (stored with every vitgpu run). */
export interface Preprocessing {
  normalize: Normalize;
  filter?: ResizeFilter;
  /** Images above this many pixels are refused before decoding (default DEFAULT_MAX_PIXELS). */
  maxPixels?: number;
  /** VOI policy for DICOM input, as --dicom-window takes it: 'none' (default), 'auto' or 'C,W'. */
  dicomWindow?: string;
}

export interface ImagePrediction {
  /** Final-norm CLS embedding. */
  embedding: Float32Array;
  /** Head logits, or null for a model without a head. */
  logits: Float32Array | null;
  /** sigmoid(logits): one probability per label. */
  probabilities: Float32Array | null;
}

/** The model's outputs for one image file's bytes (`name` is used in error messages). */
export async function predictImage(model: VisionTransformer, bytes: Uint8Array, name: string, prep: Preprocessing): Promise<ImagePrediction> {
  const size = model.config.imageSize;
  if (dicomNeedsCodecs(bytes)) await loadDicomCodecs();
  const img = preprocessImage(bytes, name, size, prep.normalize, prep.filter, prep.maxPixels, parseDicomWindow(prep.dicomWindow));
  const out = noGrad(() =>
    tidy(() => {
      const { embedding, logits } = model.forward(model.device.tensor(img.data, [1, 3, size, size]));
      return { embedding, logits: logits ?? null, probs: logits ? logits.sigmoid() : null };
    }),
  );
  try {
    return {
      embedding: await out.embedding.data(),
      logits: out.logits ? await out.logits.data() : null,
      probabilities: out.probs ? await out.probs.data() : null,
    };
  } finally {
    out.embedding.dispose();
    out.logits?.dispose();
    out.probs?.dispose();
  }
}

export interface Predictions {
  /** [N, L] sigmoid probabilities. */
  probs: Float32Array;
  /** [N, L] labels (NaN where ignored). */
  truth: Float32Array;
  paths: string[];
  /** Mean loss per image when a loss was given, else NaN. */
  loss: number;
}

/**
 * The head's logits for a batch: through the whole model, or, for a batch of cached embeddings
 * (Batch.features), through the head alone (what the model's forward does after its final norm).
 */
export function batchLogits(model: VisionTransformer, batch: Batch): Tensor {
  if (batch.features) {
    const embedding = model.device.tensor(batch.features, [batch.size, model.config.width]);
    return linear(embedding, model.param('head.weight'), model.param('head.bias'));
  }
  const s = model.config.imageSize;
  return model.forward(model.device.tensor(batch.images, [batch.size, 3, s, s])).logits!;
}

/** Runs the model without gradients over every batch of `source` (epoch 0, in order). */
export async function predictBatches(
  model: VisionTransformer, source: BatchSource, lossOf?: (b: Batch, logits: Tensor) => Tensor,
): Promise<Predictions> {
  const labels = model.config.labels;
  const probs = new Float32Array(source.samples * labels);
  const truth = new Float32Array(source.samples * labels);
  const paths: string[] = [];
  let offset = 0;
  let lossSum = 0;
  for await (const batch of source.epoch(0)) {
    const out = noGrad(() =>
      tidy(() => {
        const logits = batchLogits(model, batch);
        return { p: logits.sigmoid(), loss: lossOf ? lossOf(batch, logits) : null };
      }),
    );
    probs.set(await out.p.data(), offset * labels);
    if (out.loss) lossSum += (await out.loss.item()) * batch.size;
    out.p.dispose();
    out.loss?.dispose();
    truth.set(batch.labels, offset * labels);
    paths.push(...batch.paths);
    offset += batch.size;
  }
  return { probs, truth, paths, loss: lossOf && offset ? lossSum / offset : NaN };
}
