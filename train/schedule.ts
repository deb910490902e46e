// Learning-rate schedule: constant (the paper's), optional linear warmup, optional cosine decay to a floor.

export interface ScheduleOptions {
  lr: number;
  /** Optimizer steps of linear warmup from 0 (0 for none). */
  warmupSteps?: number;
  /** Cosine decay from lr to minLr over the steps after warmup, ending at totalSteps. */
  cosine?: boolean;
  totalSteps?: number;
  minLr?: number;
}

/** Learning rate for optimizer step `step` (1-based, as AdamW counts). */
export function learningRate(step: number, o: ScheduleOptions): number {
  const warm = o.warmupSteps ?? 0;
  if (warm > 0 && step <= warm) return (o.lr * step) / warm;
  if (!o.cosine || !o.totalSteps) return o.lr;
  const minLr = o.minLr ?? 0;
  const span = Math.max(1, o.totalSteps - warm);
  const t = Math.min(1, (step - warm) / span);
  return minLr + 0.5 * (o.lr - minLr) * (1 + Math.cos(Math.PI * t));
}
