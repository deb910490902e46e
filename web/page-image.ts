// One image on the page: what it shows (gray levels to window, or RGB), what the model says about it
// (the same models/predict.ts path as `vitgpu predict`), and where the model looked.

import { chooseWindow, dicomPixels, isDicom, parseDicomWindow } from '../datasets/dicom.js';
import { loadDicomCodecs } from '../datasets/dicom-codecs.js';
import { decodeImage } from '../datasets/image.js';
import { preprocessImage } from '../datasets/preprocess.js';
import { attentionMap, upsampleMap } from '../models/attention-map.js';
import { predictImage } from '../models/predict.js';
import type { PageModel } from './page-model.js';

/** Pixels to show: gray values with a window (DICOM, 16-bit PNG), or RGB in [0, 1]. */
export interface Display {
  width: number;
  height: number;
  /** Planar RGB in [0, 1] for images without window/level. */
  rgb: Float32Array | null;
  /** Gray values (DICOM: modality values; 16-bit PNG: 0..65535) for window/level. */
  values: Float32Array | null;
  min: number;
  max: number;
  center: number;
  windowWidth: number;
  invert: boolean;
  kind: string;
}

export interface Analysis {
  name: string;
  display: Display;
  probabilities: number[];
  embedding: number[];
  /** Heat map at the image's own size, in [0, 1]. */
  heat: Float32Array;
}

function isPng16(b: Uint8Array): boolean {
  return b.length > 24 && b[0] === 0x89 && b[1] === 0x50 && b[12] === 0x49 && b[24] === 16;
}

function displayOf(bytes: Uint8Array, name: string, model: PageModel): Display {
  if (isDicom(bytes)) {
    const p = dicomPixels(bytes, name);
    const w = chooseWindow(p, parseDicomWindow(model.prep.dicomWindow));
    const h = p.header;
    return {
      width: h.width, height: h.height, rgb: null, values: p.values, min: p.min, max: p.max,
      center: w ? w.center : (p.min + p.max) / 2, windowWidth: w ? w.width : Math.max(1, p.max - p.min),
      invert: h.photometric === 'MONOCHROME1', kind: `DICOM ${h.photometric}, ${h.bitsStored}-bit, transfer syntax ${h.transferSyntax}`,
    };
  }
  const img = decodeImage(bytes, name);
  const n = img.width * img.height;
  if (isPng16(bytes)) {
    const values = new Float32Array(n);
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < n; i++) {
      values[i] = Math.round(img.data[i] * 65535);
      min = Math.min(min, values[i]);
      max = Math.max(max, values[i]);
    }
    return { width: img.width, height: img.height, rgb: null, values, min, max, center: (min + max) / 2, windowWidth: Math.max(1, max - min), invert: false, kind: '16-bit PNG' };
  }
  return { width: img.width, height: img.height, rgb: img.data, values: null, min: 0, max: 1, center: 0.5, windowWidth: 1, invert: false, kind: bytes[0] === 0xff ? 'JPEG' : 'PNG' };
}

/** Decodes, predicts and maps one file; throws (with the file's name) when it cannot. */
export async function analyzeImage(model: PageModel, bytes: Uint8Array, name: string): Promise<Analysis> {
  if (isDicom(bytes)) await loadDicomCodecs(); // once; compressed DICOM needs the WebAssembly decoders
  const display = displayOf(bytes, name, model);
  const m = model.model;
  const { probabilities, embedding } = await predictImage(m, bytes, name, model.prep);
  // The model's input once more (the same preprocessing predictImage used) for the attention map.
  const input = preprocessImage(bytes, name, m.config.imageSize, model.prep.normalize, model.prep.filter, model.prep.maxPixels, parseDicomWindow(model.prep.dicomWindow));
  const map = await attentionMap(m, input.data);
  return {
    name,
    display,
    probabilities: probabilities ? Array.from(probabilities) : [],
    embedding: Array.from(embedding),
    heat: upsampleMap(map, display.width, display.height),
  };
}
