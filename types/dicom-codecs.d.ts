// Declarations for the DICOM decoders' packages, which ship JavaScript without types (the lossless JPEG
// decoder's package.json names a lossless.d.ts that its release does not contain). Used only inside
// datasets/dicom-codecs.ts; nothing in vitgpu's public types refers to them.

declare module 'jpeg-lossless-decoder-js' {
  export class Decoder {
    constructor(buffer?: ArrayBuffer, numBytes?: number);
    /** Decodes a lossless JPEG stream; the samples as Uint8Array (numBytes 1) or Uint16Array (2). */
    decode(buffer: ArrayBuffer, offset?: number, length?: number, numBytes?: number): ArrayBufferView;
    xDim: number;
    yDim: number;
    numComp: number;
  }
}

declare module '@cornerstonejs/codec-charls/decodewasmjs' {
  const factory: (options?: Record<string, unknown>) => Promise<unknown>;
  export default factory;
}

declare module '@cornerstonejs/codec-openjpeg/decodewasmjs' {
  const factory: (options?: Record<string, unknown>) => Promise<unknown>;
  export default factory;
}
