// Binary cross-entropy with logits and per-label positive weights (PyTorch's BCEWithLogitsLoss):
//   l = (1 - y)·x + (1 + (pw - 1)·y) · log(1 + exp(-x))           (pw: the label's pos_weight)
// written in the overflow-free form softplus(-x) = log1p(exp(-|x|)) + max(-x, 0). One pass writes each
// element's weighted loss and its gradient dl/dx = (1 - y) - (1 + (pw - 1)·y)·sigmoid(-x).

import { Params, defineKernel, grid1d, linearIndex, paramsBlock, type Kernel } from './wgsl.js';

const WG = 256;

// Params: [n, labels, hasWeight]
export function bceWithLogitsKernel(): Kernel {
  return defineKernel('bce:fwd', () => ({
    name: 'bce_with_logits',
    paramWords: 3,
    source: `// BCE with logits, pos_weight per label, optional per-element weight
${paramsBlock(3)}
@group(0) @binding(1) var<storage, read_write> loss: array<f32>;
@group(0) @binding(2) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(3) var<storage, read> logits: array<f32>;
@group(0) @binding(4) var<storage, read> targets: array<f32>;
@group(0) @binding(5) var<storage, read> posWeight: array<f32>;
@group(0) @binding(6) var<storage, read> weight: array<f32>;
${linearIndex(WG)}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(gid, nwg);
  if (i >= pu(0u)) { return; }
  let x = logits[i];
  let y = targets[i];
  let pw = posWeight[i % pu(1u)];
  let w = select(1.0, weight[i], pu(2u) != 0u);
  let c = 1.0 + (pw - 1.0) * y;
  // log1p(exp(-|x|)) without log1p: for tiny t = exp(-|x|), log(1 + t) loses digits, so use t·(1 - t/2).
  let t = exp(-abs(x));
  let l1p = select(log(1.0 + t), t * (1.0 - 0.5 * t), t < 1e-4);
  let softplusNeg = l1p + max(-x, 0.0);
  loss[i] = w * ((1.0 - y) * x + c * softplusNeg);
  let sigNeg = select(t / (1.0 + t), 1.0 / (1.0 + t), x < 0.0); // sigmoid(-x)
  dlogits[i] = w * ((1.0 - y) - c * sigNeg);
}
`,
  }));
}

export function bceParams(n: number, labels: number, hasWeight: boolean): Uint32Array {
  return new Params().u32(n, labels, hasWeight ? 1 : 0).toArray();
}

export function bceWorkgroups(n: number): [number, number] {
  return grid1d(n, WG);
}

/** CPU reference (f64): mean over all elements of the weighted loss, as torch's reduction='mean'. */
export function bceWithLogitsCpu(
  logits: ArrayLike<number>, targets: ArrayLike<number>, posWeight: ArrayLike<number>, weight?: ArrayLike<number>,
): number {
  const labels = posWeight.length;
  let s = 0;
  for (let i = 0; i < logits.length; i++) {
    const x = logits[i];
    const y = targets[i];
    const c = 1 + (posWeight[i % labels] - 1) * y;
    const sp = Math.log1p(Math.exp(-Math.abs(x))) + Math.max(-x, 0);
    s += (weight ? weight[i] : 1) * ((1 - y) * x + c * sp);
  }
  return s / logits.length;
}
