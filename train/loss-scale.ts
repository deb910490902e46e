// Dynamic loss scaling for mixed precision (PyTorch's GradScaler): the loss is multiplied by `scale`
// before backward, so that small gradients survive the f16 operands of the matmuls; the optimizer
// divides it out again in f32 (AdamW's gradScale). A step whose gradients overflowed (a non-finite
// gradient norm) is skipped, counted and halves the scale; after `interval` good steps in a row the
// scale doubles. A scale that falls below `min` means the gradients overflow f16 without any scaling:
// the trainer reports that as a divergence. The state goes into checkpoints, so a resumed run
// continues with the same scale. Browser-safe.

export interface LossScaleState {
  scale: number;
  /** Good steps since the scale last changed. */
  goodSteps: number;
  /** Steps skipped for overflow, over the whole run. */
  skipped: number;
}

export interface LossScaleOptions {
  init: number;
  growth: number;
  backoff: number;
  /** Good steps before the scale grows. */
  interval: number;
  /** Below this the scale has collapsed. */
  min: number;
}

export const LOSS_SCALE_DEFAULTS: LossScaleOptions = { init: 65536, growth: 2, backoff: 0.5, interval: 2000, min: 1 };

export class LossScaler {
  private s: LossScaleState;
  readonly opts: LossScaleOptions;

  constructor(opts: Partial<LossScaleOptions> = {}, state?: LossScaleState) {
    this.opts = { ...LOSS_SCALE_DEFAULTS };
    for (const [k, v] of Object.entries(opts) as [keyof LossScaleOptions, number | undefined][]) if (v !== undefined) this.opts[k] = v;
    this.s = state ? { ...state } : { scale: this.opts.init, goodSteps: 0, skipped: 0 };
  }

  get scale(): number {
    return this.s.scale;
  }

  get skipped(): number {
    return this.s.skipped;
  }

  /** The scale fell below `min`: even unscaled, the gradients overflow. */
  get collapsed(): boolean {
    return this.s.scale < this.opts.min;
  }

  /** After a step's gradients were checked: returns whether the step is applied (its gradients were finite). */
  update(finite: boolean): boolean {
    if (!finite) {
      this.s = { scale: this.s.scale * this.opts.backoff, goodSteps: 0, skipped: this.s.skipped + 1 };
      return false;
    }
    const goodSteps = this.s.goodSteps + 1;
    this.s = goodSteps >= this.opts.interval
      ? { ...this.s, scale: this.s.scale * this.opts.growth, goodSteps: 0 }
      : { ...this.s, goodSteps };
    return true;
  }

  state(): LossScaleState {
    return { ...this.s };
  }
}
