// Independent CPU references (f64) for the benchmark's numerical checks. Every implementation's
// outputs are compared with these before it is timed, so no number in the report comes from code that
// computes something else. The references cover sampled entries or a few heads/rows, enough to catch a
// wrong kernel while staying cheap next to the GPU work.

export interface Comparison {
  /** Largest |got − ref| over the compared entries. */
  maxAbsErr: number;
  /** maxAbsErr divided by the largest |ref| (1 when ref is all zero). */
  relErr: number;
  compared: number;
}

export function compare(got: ArrayLike<number>, ref: ArrayLike<number>, at?: readonly number[]): Comparison {
  let maxAbsErr = 0;
  let maxRef = 0;
  const n = at ? at.length : ref.length;
  for (let i = 0; i < n; i++) {
    const g = at ? got[at[i]] : got[i];
    const r = ref[i];
    const e = Math.abs(g - r);
    // NaN in the output must fail the check.
    if (!(e <= maxAbsErr)) maxAbsErr = Number.isNaN(e) ? Infinity : e;
    maxRef = Math.max(maxRef, Math.abs(r));
  }
  return { maxAbsErr, relErr: maxRef > 0 ? maxAbsErr / maxRef : maxAbsErr, compared: n };
}

/** `count` distinct-ish positions in [0, size), the same for every implementation (a fixed LCG). */
export function samplePositions(size: number, count: number, seed = 12345): number[] {
  const out: number[] = [];
  let s = seed >>> 0;
  for (let i = 0; i < Math.min(count, size); i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push(s % size);
  }
  return out;
}

/** Entries (i, j) of A·B for A [M, K], B [K, N] row-major, at flat positions i·N + j. */
export function matmulAt(a: Float32Array, b: Float32Array, k: number, n: number, positions: readonly number[]): Float64Array {
  const out = new Float64Array(positions.length);
  positions.forEach((p, idx) => {
    const i = Math.floor(p / n);
    const j = p % n;
    let acc = 0;
    for (let t = 0; t < k; t++) acc += a[i * k + t] * b[t * n + j];
    out[idx] = acc;
  });
  return out;
}

export interface AttentionHeadRef {
  out: Float64Array;
  dq?: Float64Array;
  dk?: Float64Array;
  dv?: Float64Array;
}

/**
 * softmax(q·kᵀ·scale)·v for one head (rows N, head dim D) starting at element `base` of the [B, H, N, D]
 * arrays, and with `dOut` the gradients of q, k, v.
 */
export function attentionHead(
  q: Float32Array, k: Float32Array, v: Float32Array, dOut: Float32Array | null,
  base: number, n: number, d: number, scale: number,
): AttentionHeadRef {
  const p = new Float64Array(n * n);
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    let max = -Infinity;
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let c = 0; c < d; c++) s += q[base + i * d + c] * k[base + j * d + c];
      p[i * n + j] = s * scale;
      max = Math.max(max, s * scale);
    }
    let sum = 0;
    for (let j = 0; j < n; j++) sum += p[i * n + j] = Math.exp(p[i * n + j] - max);
    for (let j = 0; j < n; j++) {
      const pij = (p[i * n + j] /= sum);
      for (let c = 0; c < d; c++) out[i * d + c] += pij * v[base + j * d + c];
    }
  }
  if (!dOut) return { out };
  const dq = new Float64Array(n * d);
  const dk = new Float64Array(n * d);
  const dv = new Float64Array(n * d);
  const ds = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    // dP[i, j] = dOut[i]·v[j]; dS = P ∘ (dP − Σ_j P dP)
    let rowDot = 0;
    for (let j = 0; j < n; j++) {
      let dp = 0;
      for (let c = 0; c < d; c++) dp += dOut[base + i * d + c] * v[base + j * d + c];
      ds[j] = dp;
      rowDot += p[i * n + j] * dp;
    }
    for (let j = 0; j < n; j++) {
      const pij = p[i * n + j];
      const dsij = pij * (ds[j] - rowDot) * scale;
      for (let c = 0; c < d; c++) {
        dv[j * d + c] += pij * dOut[base + i * d + c];
        dq[i * d + c] += dsij * k[base + j * d + c];
        dk[j * d + c] += dsij * q[base + i * d + c];
      }
    }
  }
  return { out, dq, dk, dv };
}

export interface LayerNormRef {
  y: Float64Array;
  dx?: Float64Array;
  dgamma?: Float64Array;
  dbeta?: Float64Array;
}

/** LayerNorm over the last axis of x [rows, D] (biased variance, as PyTorch), and its backward for dy. */
export function layerNorm(
  x: Float32Array, gamma: Float32Array, beta: Float32Array, dy: Float32Array | null, rows: number, d: number, eps: number,
): LayerNormRef {
  const y = new Float64Array(rows * d);
  const dx = dy ? new Float64Array(rows * d) : undefined;
  const dgamma = dy ? new Float64Array(d) : undefined;
  const dbeta = dy ? new Float64Array(d) : undefined;
  const xhat = new Float64Array(d);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let c = 0; c < d; c++) mean += x[r * d + c];
    mean /= d;
    let variance = 0;
    for (let c = 0; c < d; c++) variance += (x[r * d + c] - mean) ** 2;
    variance /= d;
    const rstd = 1 / Math.sqrt(variance + eps);
    for (let c = 0; c < d; c++) {
      xhat[c] = (x[r * d + c] - mean) * rstd;
      y[r * d + c] = xhat[c] * gamma[c] + beta[c];
    }
    if (!dy || !dx || !dgamma || !dbeta) continue;
    let meanG = 0;
    let meanGX = 0;
    for (let c = 0; c < d; c++) {
      const g = dy[r * d + c];
      const gg = g * gamma[c];
      meanG += gg;
      meanGX += gg * xhat[c];
      dgamma[c] += g * xhat[c];
      dbeta[c] += g;
    }
    meanG /= d;
    meanGX /= d;
    for (let c = 0; c < d; c++) dx[r * d + c] = rstd * (dy[r * d + c] * gamma[c] - meanG - xhat[c] * meanGX);
  }
  return { y, dx, dgamma, dbeta };
}
