// Text widths from a TrueType font's own advance widths, browser-safe. Vega lays out axis labels,
// legends and titles by measured text width; without a canvas it guesses 0.8 em per character, which
// leaves ragged gaps. Reading `cmap` (format 4, the Basic Multilingual Plane) and `hmtx` of the font
// the PNG is drawn with makes the layout match the glyphs resvg renders. Kerning is left out: it moves
// a label by a fraction of a pixel.

export interface FontMetrics {
  unitsPerEm: number;
  /** Advance width (font units) of the glyph a UTF-16 code unit maps to. */
  advance(code: number): number;
}

function tables(view: DataView): Map<string, { offset: number; length: number }> {
  const count = view.getUint16(4);
  const out = new Map<string, { offset: number; length: number }>();
  for (let i = 0; i < count; i++) {
    const at = 12 + 16 * i;
    const tag = String.fromCharCode(view.getUint8(at), view.getUint8(at + 1), view.getUint8(at + 2), view.getUint8(at + 3));
    out.set(tag, { offset: view.getUint32(at + 8), length: view.getUint32(at + 12) });
  }
  return out;
}

/** Parses the metrics of a TrueType/OpenType (glyf or CFF) font file. Throws on a file without them. */
export function parseFontMetrics(bytes: ArrayBuffer | Uint8Array): FontMetrics {
  const buf = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const t = tables(view);
  const need = (tag: string) => {
    const x = t.get(tag);
    if (!x) throw new Error(`font has no "${tag}" table`);
    return x;
  };
  const unitsPerEm = view.getUint16(need('head').offset + 18);
  const numberOfHMetrics = view.getUint16(need('hhea').offset + 34);
  const hmtx = need('hmtx').offset;
  const advanceOfGlyph = (g: number) => view.getUint16(hmtx + 4 * Math.min(g, numberOfHMetrics - 1));

  // The Unicode BMP subtable (platform 3 encoding 1, or platform 0), format 4.
  const cmap = need('cmap').offset;
  let sub = -1;
  for (let i = 0; i < view.getUint16(cmap + 2); i++) {
    const at = cmap + 4 + 8 * i;
    const platform = view.getUint16(at);
    const encoding = view.getUint16(at + 2);
    const offset = cmap + view.getUint32(at + 4);
    if (view.getUint16(offset) === 4 && ((platform === 3 && encoding === 1) || platform === 0)) {
      sub = offset;
      if (platform === 3) break;
    }
  }
  if (sub < 0) throw new Error('font has no format-4 Unicode cmap');
  const segs = view.getUint16(sub + 6) / 2;
  const ends = sub + 14;
  const starts = ends + 2 * segs + 2;
  const deltas = starts + 2 * segs;
  const rangeOffsets = deltas + 2 * segs;
  const glyphOf = (code: number): number => {
    for (let s = 0; s < segs; s++) {
      if (code > view.getUint16(ends + 2 * s)) continue;
      const start = view.getUint16(starts + 2 * s);
      if (code < start) return 0;
      const delta = view.getInt16(deltas + 2 * s);
      const ro = view.getUint16(rangeOffsets + 2 * s);
      if (ro === 0) return (code + delta) & 0xffff;
      const g = view.getUint16(rangeOffsets + 2 * s + ro + 2 * (code - start));
      return g === 0 ? 0 : (g + delta) & 0xffff;
    }
    return 0;
  };
  const cache = new Map<number, number>();
  return {
    unitsPerEm,
    advance(code) {
      let w = cache.get(code);
      if (w === undefined) {
        w = advanceOfGlyph(glyphOf(code));
        cache.set(code, w);
      }
      return w;
    },
  };
}

/** Width in pixels of `text` set in `font` at `fontSize` px. */
export function textWidth(font: FontMetrics, text: string, fontSize: number): number {
  let units = 0;
  for (let i = 0; i < text.length; i++) units += font.advance(text.charCodeAt(i));
  return (units * fontSize) / font.unitsPerEm;
}
