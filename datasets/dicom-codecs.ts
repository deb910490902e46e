// Decoders for compressed DICOM pixel data, browser-safe.
//
//   JPEG lossless (1.2.840.10008.1.2.4.57, .70)   jpeg-lossless-decoder-js (pure JS; what Cornerstone uses)
//   JPEG-LS (.80, .81)                            @cornerstonejs/codec-charls (CharLS built to WebAssembly)
//   JPEG 2000 (.90, .91)                          @cornerstonejs/codec-openjpeg (OpenJPEG built to WebAssembly)
//   JPEG baseline 8-bit (.50)                     jpeg-js (already decodes the project's JPEG files)
//
// The two WebAssembly codecs are Emscripten modules: they instantiate asynchronously, once, and then
// decode synchronously. loadDicomCodecs() loads them; decoding a file that needs one before that is an
// error that says so (datasets/image.ts and models/predict.ts load them when a file needs them).
//
// Where the .wasm files come from: in Node the Emscripten glue reads them next to itself in
// node_modules (it uses `fs` inside its Node-only branch). In a browser bundle the glue cannot know
// its own URL (an ES module has no document.currentScript), so the page calls
// setDicomCodecBase(new URL('./', import.meta.url)) and scripts/build-web.mjs copies the two
// *_decode.wasm files next to the bundle; they are fetched only when a compressed DICOM arrives.

import jpeg from 'jpeg-js';
import { Decoder as LosslessJpegDecoder } from 'jpeg-lossless-decoder-js';

/** What the Emscripten decoders expose (embind classes of CharLS and OpenJPEG). */
interface WasmDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  decode(): void;
  getFrameInfo(): { width: number; height: number; bitsPerSample: number; componentCount: number; isSigned?: boolean };
  getDecodedBuffer(): Uint8Array;
  delete(): void;
}
interface CharlsModule { JpegLSDecoder: new () => WasmDecoder }
interface OpenJpegModule { J2KDecoder: new () => WasmDecoder }
type Factory<M> = (options: Record<string, unknown>) => Promise<M>;

let base: string | null = null;
let charls: CharlsModule | null = null;
let openjpeg: OpenJpegModule | null = null;
let loading: Promise<void> | null = null;

/** Where a browser page serves the codecs' .wasm files (a folder URL); not needed in Node. */
export function setDicomCodecBase(url: string | URL): void {
  base = String(url);
}

function emscriptenOptions(): Record<string, unknown> {
  // OpenJPEG logs every header it reads through print/printErr; decoding errors are thrown, not printed.
  const quiet = () => {};
  const options: Record<string, unknown> = { print: quiet, printErr: quiet };
  if (base) options.locateFile = (file: string) => new URL(file, base!).href;
  return options;
}

/** Loads (once) the WebAssembly decoders for JPEG-LS and JPEG 2000. */
export function loadDicomCodecs(): Promise<void> {
  loading ??= (async () => {
    const [c, o] = await Promise.all([import('@cornerstonejs/codec-charls/decodewasmjs'), import('@cornerstonejs/codec-openjpeg/decodewasmjs')]);
    const charlsFactory = (c.default ?? c) as unknown as Factory<CharlsModule>;
    const openjpegFactory = (o.default ?? o) as unknown as Factory<OpenJpegModule>;
    [charls, openjpeg] = await Promise.all([charlsFactory(emscriptenOptions()), openjpegFactory(emscriptenOptions())]);
  })().catch((err) => {
    loading = null;
    throw new Error(`cannot load the DICOM decoders (CharLS, OpenJPEG WebAssembly): ${(err as Error).message ?? err}`);
  });
  return loading;
}

/** Decoding needed a WebAssembly codec before loadDicomCodecs() finished. */
export class DicomCodecsNotLoaded extends Error {
  constructor() {
    super('the DICOM WebAssembly decoders are not loaded yet (await loadDicomCodecs() first)');
  }
}

export function dicomCodecsLoaded(): boolean {
  return charls !== null && openjpeg !== null;
}

export const JPEG_BASELINE = '1.2.840.10008.1.2.4.50';
export const JPEG_LOSSLESS = ['1.2.840.10008.1.2.4.57', '1.2.840.10008.1.2.4.70'];
export const JPEG_LS = ['1.2.840.10008.1.2.4.80', '1.2.840.10008.1.2.4.81'];
export const JPEG_2000 = ['1.2.840.10008.1.2.4.90', '1.2.840.10008.1.2.4.91'];

/** Transfer syntaxes whose decoder is WebAssembly (loadDicomCodecs first). */
export function needsWasmCodec(syntax: string): boolean {
  return JPEG_LS.includes(syntax) || JPEG_2000.includes(syntax);
}

export const COMPRESSED_SYNTAXES = [JPEG_BASELINE, ...JPEG_LOSSLESS, ...JPEG_LS, ...JPEG_2000];

/** Decoded samples of one frame: integers as the codec gives them (unsigned, or signed for a signed JPEG 2000). */
export interface DecodedFrame {
  width: number;
  height: number;
  samples: ArrayLike<number>;
  /** Samples per pixel the stream holds. */
  components: number;
}

function runWasm(dec: WasmDecoder, data: Uint8Array): DecodedFrame {
  try {
    dec.getEncodedBuffer(data.length).set(data);
    dec.decode();
    const info = dec.getFrameInfo();
    const bytes = dec.getDecodedBuffer();
    const n = info.width * info.height * info.componentCount;
    let samples: ArrayLike<number>;
    if (info.bitsPerSample <= 8) samples = Uint8Array.from(bytes.subarray(0, n));
    else {
      // Little-endian 16-bit samples in the codec's memory: copy them out before delete() frees it.
      const copy = bytes.slice(0, 2 * n);
      samples = info.isSigned ? new Int16Array(copy.buffer, 0, n) : new Uint16Array(copy.buffer, 0, n);
    }
    return { width: info.width, height: info.height, samples, components: info.componentCount };
  } finally {
    dec.delete();
  }
}

/**
 * Decodes one compressed frame. `bytesPerSample` is Bits Allocated / 8 (the lossless JPEG decoder
 * needs it). Throws plain Errors; the caller names the file.
 */
export function decodeCompressedFrame(syntax: string, data: Uint8Array, bytesPerSample: number): DecodedFrame {
  if (JPEG_LOSSLESS.includes(syntax)) {
    const decoder = new LosslessJpegDecoder();
    const samples = decoder.decode(data.buffer as ArrayBuffer, data.byteOffset, data.length, bytesPerSample) as Uint8Array | Uint16Array;
    return { width: decoder.xDim, height: decoder.yDim, samples, components: decoder.numComp };
  }
  if (syntax === JPEG_BASELINE) {
    const img = jpeg.decode(data, { useTArray: true, formatAsRGBA: false });
    return { width: img.width, height: img.height, samples: img.data, components: img.data.length / (img.width * img.height) };
  }
  if (JPEG_LS.includes(syntax) || JPEG_2000.includes(syntax)) {
    if (!dicomCodecsLoaded()) throw new DicomCodecsNotLoaded();
    return runWasm(JPEG_LS.includes(syntax) ? new charls!.JpegLSDecoder() : new openjpeg!.J2KDecoder(), data);
  }
  throw new Error(`no decoder for transfer syntax ${syntax}`);
}
