// Image bytes to model input, browser-safe: decode, square to the model's size, quantize as the
// resized-image cache stores it, normalize. Training batches (through the cache), `predict`, `embed`
// and the browser page all take this path, so one image always gives one answer.

import { sourceBits, quantizeImage } from './image-cache.js';
import { checkPixelLimit, DEFAULT_MAX_PIXELS } from './image-header.js';
import { DEFAULT_DICOM_WINDOW, type DicomWindow } from './dicom.js';
import { decodeImage, normalizeImage, resizeImage, type Normalize, type ResizeFilter, type RgbImage } from './image.js';

/**
 * Decoded, squared to size × size with `filter`, quantized to the source's bit depth (8 or 16). An
 * image above `maxPixels` is refused before it is decoded; `dicomWindow` is the VOI policy for DICOM.
 */
export function squareImage(
  bytes: Uint8Array, name: string, size: number, filter: ResizeFilter = 'lanczos', maxPixels = DEFAULT_MAX_PIXELS,
  dicomWindow: DicomWindow = DEFAULT_DICOM_WINDOW,
): RgbImage {
  checkPixelLimit(bytes, name, maxPixels);
  return quantizeImage(resizeImage(decodeImage(bytes, name, dicomWindow), size, size, filter), sourceBits(bytes, name));
}

/** squareImage, then normalized: the model's input for one image, planar [3, size, size]. */
export function preprocessImage(
  bytes: Uint8Array, name: string, size: number, normalize: Normalize, filter: ResizeFilter = 'lanczos', maxPixels = DEFAULT_MAX_PIXELS,
  dicomWindow: DicomWindow = DEFAULT_DICOM_WINDOW,
): RgbImage {
  // squareImage returns a fresh buffer, so normalizing in place is safe.
  return normalizeImage(squareImage(bytes, name, size, filter, maxPixels, dicomWindow), normalize);
}
