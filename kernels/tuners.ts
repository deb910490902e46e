// The tunable kernel families, loaded together: importing this module installs the hooks that
// planMatmul, attentionVariant and the layerNorm launchers consult (kernels/tune.ts says how a
// choice is made). Device entries (engine/node.ts; a browser page calling installTuner) import it.

import { MATMUL_FAMILY } from './matmul-tune.js';
import { ATTENTION_FAMILIES } from './attention-tune.js';
import { LAYERNORM_FAMILIES } from './layernorm-tune.js';
import type { TuneFamily } from './tune.js';

export { installTuner, tunerOf, memoryTuneStore, adapterKey, tuneFileProblem, TUNE_POLICIES, TUNE_FORMAT, Tuner } from './tune.js';
export type { TuneEntry, TuneFile, TunePolicy, TuneStore, TunerOptions, TuneFamily } from './tune.js';

/** Every tunable family by name. */
export const TUNE_FAMILIES: readonly TuneFamily<never>[] = [MATMUL_FAMILY, ...Object.values(ATTENTION_FAMILIES), ...Object.values(LAYERNORM_FAMILIES)] as TuneFamily<never>[];
