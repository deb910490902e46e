// Binary cross-entropy with logits and per-label positive weights (PyTorch's BCEWithLogitsLoss):
//   l = (1 - y)·x + (1 + (pw - 1)·y) · log(1 + exp(-x))           (pw: the label's pos_weight)
// written in the overflow-free form softplus(-x) = log1p(exp(-|x|)) + max(-x, 0). One pass writes each
// element's weighted loss and its gradient dl/dx = (1 - y) - (1 + (pw - 1)·y)·sigmoid(-x).

import { Tensor } from '../engine/tensor.js';
import { contiguousInput } from './elementwise.js';
import { Params, grid1d, launch, pointwiseKernel, type Kernel } from './wgsl.js';

const WG = 256;

// Params: [n, labels, hasWeight]
export function bceWithLogitsKernel(): Kernel {
  return pointwiseKernel({
    key: 'bce:fwd',
    name: 'bce_with_logits',
    comment: 'BCE with logits, pos_weight per label, optional per-element weight',
    paramWords: 3,
    buffers: { loss: 'read_write', dlogits: 'read_write', logits: 'read', targets: 'read', posWeight: 'read', weight: 'read' },
    wg: WG,
    body: `let x = logits[i];
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
  dlogits[i] = w * ((1.0 - y) - c * sigNeg);`,
  });
}

export function bceParams(n: number, labels: number, hasWeight: boolean): Uint32Array {
  return new Params().u32(n, labels, hasWeight ? 1 : 0).toArray();
}

export function bceWorkgroups(n: number): [number, number] {
  return grid1d(n, WG);
}

/**
 * Each element's weighted loss and its gradient dl/dlogits, for logits and targets of one shape,
 * posWeight [labels] and weight (the logits' shape) or null.
 */
export function bceWithLogitsElements(
  logits: Tensor, targets: Tensor, posWeight: Tensor, weight: Tensor | null,
): { loss: Tensor; dlogits: Tensor } {
  const dev = logits.device;
  const n = logits.size;
  const labels = posWeight.size;
  const loss = Tensor.empty(dev, logits.shape);
  const dlogits = Tensor.empty(dev, logits.shape);
  if (n > 0) {
    const [x, y, pw] = [logits, targets, posWeight].map((t) => contiguousInput(t, 'zero'));
    const w = weight ? contiguousInput(weight, 'zero') : null;
    // Without a weight the binding still needs a buffer: the kernel reads none of it (params word 2 is 0).
    launch(bceWithLogitsKernel(), { loss, dlogits, logits: x, targets: y, posWeight: pw, weight: w ?? pw }, bceParams(n, labels, w !== null), bceWorkgroups(n));
    for (const t of [x, y, pw, w]) t?.dispose();
  }
  return { loss, dlogits };
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
