// The error every image decoder throws (naming the file) and the decoded image type, in a module of
// their own so that the decoders (image.ts, dicom.ts) import them without importing each other.

import { VitgpuError } from '../engine/errors.js';

export class ImageError extends VitgpuError {
  constructor(readonly file: string, problem: string) {
    super(`${file}: ${problem}`);
  }
}

/** Planar RGB in [0, 1]: data[c·H·W + y·W + x]. */
export interface RgbImage {
  width: number;
  height: number;
  data: Float32Array;
}
