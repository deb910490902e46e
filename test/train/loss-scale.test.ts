// Dynamic loss scaling's rule (train/loss-scale.ts), as PyTorch's GradScaler: back off on overflow and
// count the skipped step, grow after `interval` good steps in a row, collapse below `min`.

import { describe, expect, it } from 'vitest';
import { LOSS_SCALE_DEFAULTS, LossScaler } from '../../train/loss-scale.js';

describe('LossScaler', () => {
  it("starts at PyTorch's defaults", () => {
    expect(LOSS_SCALE_DEFAULTS).toMatchObject({ init: 65536, growth: 2, backoff: 0.5, interval: 2000 });
    expect(new LossScaler().state()).toEqual({ scale: 65536, goodSteps: 0, skipped: 0 });
  });

  it('overflow skips the step and halves the scale; a run of good steps doubles it', () => {
    const s = new LossScaler({ init: 1024, interval: 3 });
    expect(s.update(false)).toBe(false);
    expect(s.state()).toEqual({ scale: 512, goodSteps: 0, skipped: 1 });
    expect(s.update(true)).toBe(true);
    expect(s.update(true)).toBe(true);
    expect(s.update(false)).toBe(false); // an overflow resets the run of good steps
    expect(s.state()).toEqual({ scale: 256, goodSteps: 0, skipped: 2 });
    for (let i = 0; i < 3; i++) expect(s.update(true)).toBe(true);
    expect(s.state()).toEqual({ scale: 512, goodSteps: 0, skipped: 2 });
  });

  it('collapses below min; resumes from a saved state', () => {
    const s = new LossScaler({ init: 4, min: 1 });
    s.update(false);
    s.update(false);
    expect(s.collapsed).toBe(false); // 1
    s.update(false);
    expect(s.collapsed).toBe(true); // 0.5
    const again = new LossScaler({}, { scale: 8, goodSteps: 5, skipped: 3 });
    expect(again.scale).toBe(8);
    expect(again.skipped).toBe(3);
  });
});
