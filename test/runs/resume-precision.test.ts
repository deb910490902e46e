// `train --resume` and --precision (runs/resume.ts): a precision that contradicts the run is refused,
// and a run written before --precision existed counts as f32.

import { describe, expect, it } from 'vitest';
import { reconcileResume } from '../../runs/resume.js';
import type { RunConfig } from '../../runs/config.js';

const config = (train: Record<string, unknown>) => ({ data: {}, model: {}, train: { epochs: 3, ...train } }) as unknown as RunConfig;

describe('resume and --precision', () => {
  it('refuses a change of precision or loss scale, naming both values', () => {
    expect(() => reconcileResume(config({ precision: 'mixed' }), config({ precision: 'f32' }), ['--precision'], 'runs/x/config.json'))
      .toThrow(/--precision f32 \(the run has mixed\)/);
    expect(() => reconcileResume(config({ precision: 'mixed', lossScale: 1024 }), config({ precision: 'mixed', lossScale: 65536 }), ['--loss-scale'], 'runs/x/config.json'))
      .toThrow(/--loss-scale 65536 \(the run has 1024\)/);
    expect(reconcileResume(config({ precision: 'mixed' }), config({ precision: 'mixed' }), ['--precision'], 'c').changed).toEqual([]);
  });

  it('a run without a stored precision is f32', () => {
    expect(reconcileResume(config({}), config({ precision: 'f32' }), ['--precision'], 'c').changed).toEqual([]);
    expect(() => reconcileResume(config({}), config({ precision: 'mixed' }), ['--precision'], 'c')).toThrow(/--precision mixed \(the run has f32\)/);
  });
});
