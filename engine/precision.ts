// The precision ops run in, as a scope (like noGrad): 'f32' (the default, the paper's), or 'mixed',
// where linear layers (engine/ops/matmul-mixed.ts) read f16 copies of their input and weight, accumulate
// in f32, and keep the f16 input for backward; everything else (LayerNorm, softmax statistics, the loss,
// the optimizer, the f32 master weights) stays f32. Set by the model's forward (models/vit.ts); an op
// decides when it runs, and its backward follows that decision.

export type Precision = 'f32' | 'mixed';

export const PRECISIONS: readonly Precision[] = ['f32', 'mixed'];

let current: Precision = 'f32';

/** Runs `fn` with ops in `precision`. */
export function withPrecision<T>(precision: Precision, fn: () => T): T {
  const prev = current;
  current = precision;
  try {
    return fn();
  } finally {
    current = prev;
  }
}

/** Sets the precision outside any withPrecision scope (a command's --precision). */
export function setDefaultPrecision(precision: Precision): void {
  current = precision;
}

export function currentPrecision(): Precision {
  return current;
}
