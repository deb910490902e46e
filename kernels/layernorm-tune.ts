// The layerNorm row kernels (forward, backward dx) as autotuned families (kernels/tune.ts): the knob
// is the row reduction, a tree of 32–256 invocations (wider rows want more, more rows in flight want
// fewer) or one subgroup with shuffles where the subgroup size is fixed; the shape class is rows and D
// rounded up to powers of two. Importing this module installs the hook the
// layerNorm launchers consult.

import type { Device } from '../engine/device.js';
import type { Tensor } from '../engine/tensor.js';
import { defaultRowReduce, fixedSubgroupSize, launch, rowReduceId, rowWorkgroups, type RowReduce } from './wgsl.js';
import { LAYERNORM_ROW_WGS, layerNormBackwardKernel, layerNormForwardKernel, layerNormParams, layerNormTuning, type LayerNormCall } from './layernorm.js';
import { pow2, tunedChoice, zerosScratch, type TuneFamily } from './tune.js';

type Kind = LayerNormCall['kernel'];

/** The candidates that fit the device: trees `wg32` ... `wg256`, and `sg<S>` with a fixed subgroup size S >= 8. */
export function layerNormSearchSpace(device: Pick<Device, 'info' | 'subgroups'>): string[] {
  const max = device.info.limits.maxComputeInvocationsPerWorkgroup ?? 256;
  const ids = LAYERNORM_ROW_WGS.filter((wg) => wg <= max).map((wg) => `wg${wg}`);
  const s = fixedSubgroupSize(device);
  if (s !== null && s >= 8) ids.push(`sg${s}`);
  return ids;
}

/** The row reduction a candidate id stands for. */
export function layerNormCandidate(id: string): RowReduce {
  const m = /^(wg|sg)(\d+)$/.exec(id);
  const wg = Number(m?.[2]);
  if (!m || (m[1] === 'wg' && !(LAYERNORM_ROW_WGS as readonly number[]).includes(wg)) || (m[1] === 'sg' && ![8, 16, 32, 64].includes(wg))) {
    throw new Error(`layerNorm: unknown tuning candidate "${id}"`);
  }
  return { wg, subgroup: m[1] === 'sg' };
}

function family(kind: Kind): TuneFamily<LayerNormCall> {
  return {
    name: `layernorm.${kind}`,
    classKey: (call) => `rows${pow2(call.rows)} d${pow2(call.d)}`,
    rule: (device) => rowReduceId(defaultRowReduce(device)),
    candidates: (device) => layerNormSearchSpace(device),
    scratch(device, { rows, d }) {
      const size = rows * d;
      const buffers: Record<string, Tensor> = kind === 'forward'
        ? { y: zerosScratch(device, size), stats: zerosScratch(device, 2 * rows), x: zerosScratch(device, size), gamma: zerosScratch(device, d), beta: zerosScratch(device, d) }
        : { dx: zerosScratch(device, size), dy: zerosScratch(device, size), x: zerosScratch(device, size), gamma: zerosScratch(device, d), stats: zerosScratch(device, 2 * rows) };
      const params = kind === 'forward' ? layerNormParams(rows, d, 1e-6) : layerNormParams(rows, d);
      return {
        run(id) {
          const v = layerNormCandidate(id);
          launch(kind === 'forward' ? layerNormForwardKernel(v, d % 4 === 0) : layerNormBackwardKernel(v, d % 4 === 0), buffers, params, rowWorkgroups(rows));
        },
        dispose() {
          for (const t of Object.values(buffers)) t.dispose();
        },
      };
    },
    describe: (call) => `${call.rows} rows of ${call.d}`,
  };
}

export const LAYERNORM_FAMILIES: Record<Kind, TuneFamily<LayerNormCall>> = { forward: family('forward'), dx: family('dx') };

layerNormTuning.choose = (device, call) => {
  const id = tunedChoice(device, LAYERNORM_FAMILIES[call.kernel], call);
  if (!id || !layerNormSearchSpace(device).includes(id)) return null;
  return layerNormCandidate(id);
};
