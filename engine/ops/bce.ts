// Binary cross-entropy with logits (PyTorch's BCEWithLogitsLoss with pos_weight), forward and
// backward; the kernel (one pass: each element's loss and its gradient) is in kernels/bce.ts.

import type { Tensor } from '../tensor.js';
import { ShapeError } from '../errors.js';
import { needsGrad, record } from '../autograd.js';
import { shapeStr } from '../shape.js';
import { bceWithLogitsElements } from '../../kernels/bce.js';

export interface BceOptions {
  /** Per-label weight of positives, shape [labels] (PyTorch's pos_weight). */
  posWeight?: Tensor;
  /** Per-element weight (e.g. 0 to ignore an uncertain label), shape of the logits. */
  weight?: Tensor;
  /** Divide the summed loss by this instead of the element count (e.g. the number of unmasked labels). */
  normalizer?: number;
}

/** Mean binary cross-entropy of logits [batch, labels] against targets in [0, 1] (BCEWithLogitsLoss). */
export function bceWithLogits(logits: Tensor, targets: Tensor, opts: BceOptions = {}): Tensor {
  logits.assertAlive('bceWithLogits');
  targets.assertAlive('bceWithLogits');
  if (logits.shape.join() !== targets.shape.join()) {
    throw new ShapeError(`bceWithLogits: logits ${shapeStr(logits.shape)} and targets ${shapeStr(targets.shape)} differ`);
  }
  const labels = logits.rank === 0 ? 1 : logits.shape[logits.rank - 1];
  if (opts.posWeight && opts.posWeight.shape.join() !== `${labels}`) {
    throw new ShapeError(`bceWithLogits: posWeight ${shapeStr(opts.posWeight.shape)} must be [${labels}]`);
  }
  if (opts.weight && opts.weight.shape.join() !== logits.shape.join()) {
    throw new ShapeError(`bceWithLogits: weight ${shapeStr(opts.weight.shape)} must match logits ${shapeStr(logits.shape)}`);
  }
  const pw = opts.posWeight ?? logits.device.ones([labels]);
  const { loss, dlogits } = bceWithLogitsElements(logits, targets, pw, opts.weight ?? null);
  const norm = opts.normalizer ?? logits.size;
  const total = loss.sum();
  const out = total.mul(1 / norm);
  // The loss node is replaced: its gradient comes from the saved per-element derivative.
  const result = out.detach();
  if (needsGrad(logits)) {
    record(result, 'bceWithLogits', [logits], [dlogits], (g, [dl]) => [dl.mul(g.mul(1 / norm))]);
  }
  for (const t of [loss, dlogits, total, out]) t.dispose();
  if (pw !== opts.posWeight) pw.dispose();
  return result;
}
