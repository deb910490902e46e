// The page's model: a checkpoint loaded once (from the URL `vitgpu serve` offers, or a file the user
// picks) and kept until another replaces it, with what its metadata says about using it: label names,
// input size, normalization, resize filter, DICOM window policy, architecture and the decision
// thresholds the run chose on its validation split.

import type { Device } from '../engine/device.js';
import { loadVit } from '../models/load.js';
import { blobSource, bytesSource, readHeader, type ByteSource } from '../models/safetensors.js';
import type { Preprocessing } from '../models/predict.js';
import type { VisionTransformer } from '../models/vit.js';
import type { Normalize, ResizeFilter } from '../datasets/image.js';

export interface PageModel {
  model: VisionTransformer;
  /** Where it came from (file name or URL). */
  source: string;
  labels: string[];
  /** True when the labels come from the checkpoint (a vitgpu run), false when numbered here. */
  namedLabels: boolean;
  prep: Preprocessing;
  arch: string;
  imageSize: number;
  /** label → threshold chosen on the validation split; null when the checkpoint stores none. */
  /** Per label: a number, or "NaN" / "Infinity" as train stores them (read with Number()). */
  thresholds: Record<string, number | string> | null;
  thresholdPolicy: string | null;
  /** What the page shows about the checkpoint. */
  summary: string;
}

/** Settings for checkpoints without vitgpu run metadata (timm, HF, DINOv2 files). */
export interface ManualSettings {
  imageSize?: number;
  heads?: number;
  normalize?: Normalize;
}

interface RunMeta {
  data?: { normalize?: Normalize; filter?: ResizeFilter; dicomWindow?: string; maxPixels?: number };
  model?: { arch?: string; imageSize?: number };
}

function parseJson<T>(text: string | undefined): T | null {
  if (!text) return null;
  try {
    return JSON.parse(text) as T;
  } catch {
    return null;
  }
}

/** Reads a URL into memory, reporting bytes as they arrive (total from Content-Length, or null). */
export async function fetchWithProgress(url: string, onProgress: (loaded: number, total: number | null) => void): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`cannot fetch ${url}: HTTP ${res.status}`);
  const total = Number(res.headers.get('content-length')) || null;
  if (!res.body) {
    const all = new Uint8Array(await res.arrayBuffer());
    onProgress(all.length, all.length);
    return all;
  }
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    loaded += value.length;
    onProgress(loaded, total);
  }
  const out = new Uint8Array(loaded);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Loads a checkpoint's model and reads its metadata. */
export async function loadPageModel(device: Device, src: ByteSource, manual: ManualSettings = {}): Promise<PageModel> {
  const header = await readHeader(src);
  const meta = header.metadata;
  const run = parseJson<RunMeta>(meta.run);
  const { model, report } = await loadVit(device, src, {
    imageSize: run?.model?.imageSize ?? manual.imageSize,
    heads: manual.heads,
  });
  const stored = (meta.labels ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const n = model.config.labels;
  const namedLabels = stored.length === n && n > 0;
  const labels = namedLabels ? stored : Array.from({ length: n }, (_, i) => `label ${i + 1}`);
  const thresholds = parseJson<Record<string, number | string>>(meta.thresholds);
  const prep: Preprocessing = {
    normalize: run?.data?.normalize ?? manual.normalize ?? 'none',
    filter: run?.data?.filter ?? 'lanczos',
    dicomWindow: run?.data?.dicomWindow ?? 'none',
    maxPixels: run?.data?.maxPixels,
  };
  const arch = run?.model?.arch ?? report.config.name;
  const dtypes = Object.entries(report.dtypes).map(([k, v]) => `${v} ${k}`).join(', ');
  return {
    model,
    source: src.name,
    labels,
    namedLabels,
    prep,
    arch,
    imageSize: model.config.imageSize,
    thresholds: thresholds && typeof thresholds === 'object' ? thresholds : null,
    thresholdPolicy: meta.threshold_policy ?? null,
    summary: `${report.format} naming, ${arch}, ${model.config.imageSize} px, ${report.loaded} tensors (${dtypes})` +
      `${run ? '' : '; no vitgpu run settings: normalization and size as set below'}`,
  };
}

export { blobSource, bytesSource };
