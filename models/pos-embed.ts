// Positional-grid resizing as PyTorch's F.interpolate(mode='bicubic', align_corners=False) computes it:
// cubic convolution with A = -0.75, source coordinate (dst + 0.5)·scale − 0.5 (not clamped), and input
// indices clamped to the border. Resizing is linear, so it is a matrix: out = M · in along each axis.

/**
 * 'size': an explicit output size (timm, HF Dinov2): scale = in / out.
 * 'dinov2-hub': the DINOv2 hub model passes scale_factor = (out + 0.1) / in, and PyTorch maps
 * coordinates with 1 / scale_factor.
 */
export type PosResizeMode = 'size' | 'dinov2-hub';

function cubic(t: number, a = -0.75): [number, number, number, number] {
  const c1 = (x: number) => ((a + 2) * x - (a + 3)) * x * x + 1; // |x| <= 1
  const c2 = (x: number) => ((a * x - 5 * a) * x + 8 * a) * x - 4 * a; // 1 < |x| < 2
  return [c2(t + 1), c1(t), c1(1 - t), c2(2 - t)];
}

/** Row-major [out, in] matrix resizing a length-`n` axis to `out` samples. */
export function bicubicResizeMatrix(n: number, out: number, mode: PosResizeMode): Float32Array {
  const scale = mode === 'dinov2-hub' ? n / (out + 0.1) : n / out;
  const m = new Float64Array(out * n);
  for (let o = 0; o < out; o++) {
    const src = (o + 0.5) * scale - 0.5;
    const i0 = Math.floor(src);
    const w = cubic(src - i0);
    for (let k = 0; k < 4; k++) {
      const idx = Math.min(Math.max(i0 - 1 + k, 0), n - 1);
      m[o * n + idx] += w[k];
    }
  }
  return Float32Array.from(m);
}
