// The layerNorm row kernels (forward, backward dx) as autotuned families (kernels/tune.ts): the knob
// is the invocations per row (32–256; wider rows want more, more rows in flight want fewer), the
// shape class rows and D rounded up to powers of two. Importing this module installs the hook the
// layerNorm launchers consult.

import type { Device } from '../engine/device.js';
import type { Tensor } from '../engine/tensor.js';
import { ROW_WG, launch, rowWorkgroups } from './wgsl.js';
import { LAYERNORM_ROW_WGS, layerNormBackwardKernel, layerNormForwardKernel, layerNormParams, layerNormTuning, type LayerNormCall } from './layernorm.js';
import { pow2, tunedChoice, zerosScratch, type TuneFamily } from './tune.js';

type Kind = LayerNormCall['kernel'];

/** The candidates that fit the device: `wg32` ... `wg256`. */
export function layerNormSearchSpace(device: Pick<Device, 'info'>): string[] {
  const max = device.info.limits.maxComputeInvocationsPerWorkgroup ?? 256;
  return LAYERNORM_ROW_WGS.filter((wg) => wg <= max).map((wg) => `wg${wg}`);
}

export function layerNormCandidateWg(id: string): number {
  const wg = Number(/^wg(\d+)$/.exec(id)?.[1]);
  if (!(LAYERNORM_ROW_WGS as readonly number[]).includes(wg)) throw new Error(`layerNorm: unknown tuning candidate "${id}"`);
  return wg;
}

function family(kind: Kind): TuneFamily<LayerNormCall> {
  return {
    name: `layernorm.${kind}`,
    classKey: (call) => `rows${pow2(call.rows)} d${pow2(call.d)}`,
    rule: () => `wg${ROW_WG}`,
    candidates: (device) => layerNormSearchSpace(device),
    scratch(device, { rows, d }) {
      const size = rows * d;
      const buffers: Record<string, Tensor> = kind === 'forward'
        ? { y: zerosScratch(device, size), stats: zerosScratch(device, 2 * rows), x: zerosScratch(device, size), gamma: zerosScratch(device, d), beta: zerosScratch(device, d) }
        : { dx: zerosScratch(device, size), dy: zerosScratch(device, size), x: zerosScratch(device, size), gamma: zerosScratch(device, d), stats: zerosScratch(device, 2 * rows) };
      const params = kind === 'forward' ? layerNormParams(rows, d, 1e-6) : layerNormParams(rows, d);
      return {
        run(id) {
          const wg = layerNormCandidateWg(id);
          launch(kind === 'forward' ? layerNormForwardKernel(wg) : layerNormBackwardKernel(wg), buffers, params, rowWorkgroups(rows));
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
  return layerNormCandidateWg(id);
};
