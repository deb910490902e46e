// Neural-network ops with hand-written kernels: layerNorm, softmax, bceWithLogits. Each op's backward
// rule is recorded right after its forward.

import { Tensor } from '../tensor.js';
import { ShapeError } from '../errors.js';
import { needsGrad, noGrad, record } from '../autograd.js';
import { shapeStr } from '../shape.js';
import {
  columnWorkgroups, layerNormBackwardKernel, layerNormForwardKernel, layerNormParamGradKernel, layerNormParams, rowWorkgroups,
} from '../../kernels/layernorm.js';
import { softmaxBackwardKernel, softmaxForwardKernel, softmaxParams } from '../../kernels/softmax.js';
import { bceParams, bceWithLogitsKernel, bceWorkgroups } from '../../kernels/loss.js';

function lastAxis(x: Tensor, op: string): { rows: number; d: number } {
  if (x.rank === 0) throw new ShapeError(`${op}: needs at least one axis`);
  const d = x.shape[x.rank - 1];
  return { rows: d === 0 ? 0 : x.size / d, d };
}

/** LayerNorm over the last axis with affine γ, β of shape [D]. */
export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps = 1e-5): Tensor {
  for (const t of [x, gamma, beta]) t.assertAlive('layerNorm');
  const { rows, d } = lastAxis(x, 'layerNorm');
  if (gamma.shape.join() !== `${d}` || beta.shape.join() !== `${d}`) {
    throw new ShapeError(`layerNorm: γ ${shapeStr(gamma.shape)} and β ${shapeStr(beta.shape)} must be [${d}] for input ${shapeStr(x.shape)}`);
  }
  const xc = rowMajor(x);
  const gc = rowMajor(gamma);
  const bc = rowMajor(beta);
  const dev = x.device;
  const y = Tensor.empty(dev, x.shape);
  const stats = Tensor.empty(dev, [rows, 2]);
  if (rows > 0) {
    dev.dispatch(layerNormForwardKernel(), [y.storage.buffer, stats.storage.buffer, xc.storage.buffer, gc.storage.buffer, bc.storage.buffer],
      layerNormParams(rows, d, eps), rowWorkgroups(rows));
  }
  if (needsGrad(x, gamma, beta)) {
    record(y, 'layerNorm', [x, gamma, beta], [xc, gc, stats], (g, [xs, gs, st]) => {
      const gcont = rowMajor(g);
      const dx = Tensor.empty(dev, x.shape);
      const dgamma = Tensor.empty(dev, [d]);
      const dbeta = Tensor.empty(dev, [d]);
      if (rows > 0) {
        dev.dispatch(layerNormBackwardKernel(), [dx.storage.buffer, gcont.storage.buffer, xs.storage.buffer, gs.storage.buffer, st.storage.buffer],
          layerNormParams(rows, d), rowWorkgroups(rows));
        dev.dispatch(layerNormParamGradKernel(), [dgamma.storage.buffer, dbeta.storage.buffer, gcont.storage.buffer, xs.storage.buffer, st.storage.buffer],
          layerNormParams(rows, d), columnWorkgroups(d));
      }
      return [dx, dgamma, dbeta];
    });
  }
  xc.dispose();
  gc.dispose();
  bc.dispose();
  stats.dispose();
  return y;
}

/**
 * `x` as a contiguous tensor starting at element 0 of its buffer (what the row kernels index), copied
 * only when it is not already; a new reference either way, for the caller to dispose. No graph.
 */
function rowMajor(x: Tensor): Tensor {
  if (x.isContiguous && x.offset === 0) return x.detach();
  return noGrad(() => x.contiguous());
}

/** Softmax over the last axis. */
export function softmax(x: Tensor): Tensor {
  x.assertAlive('softmax');
  const { rows, d } = lastAxis(x, 'softmax');
  const xc = rowMajor(x);
  const dev = x.device;
  const y = Tensor.empty(dev, x.shape);
  if (rows > 0) dev.dispatch(softmaxForwardKernel(), [y.storage.buffer, xc.storage.buffer], softmaxParams(rows, d, true), rowWorkgroups(rows));
  xc.dispose();
  if (needsGrad(x)) {
    record(y, 'softmax', [x], [y], (g, [ys]) => {
      const gc = rowMajor(g);
      const dx = Tensor.empty(dev, x.shape);
      if (rows > 0) dev.dispatch(softmaxBackwardKernel(), [dx.storage.buffer, ys.storage.buffer, gc.storage.buffer], softmaxParams(rows, d, false), rowWorkgroups(rows));
      return [dx];
    });
  }
  return y;
}

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
  const dev = logits.device;
  if (opts.posWeight && opts.posWeight.shape.join() !== `${labels}`) {
    throw new ShapeError(`bceWithLogits: posWeight ${shapeStr(opts.posWeight.shape)} must be [${labels}]`);
  }
  if (opts.weight && opts.weight.shape.join() !== logits.shape.join()) {
    throw new ShapeError(`bceWithLogits: weight ${shapeStr(opts.weight.shape)} must match logits ${shapeStr(logits.shape)}`);
  }
  const x = rowMajor(logits);
  const y = rowMajor(targets);
  const pw = opts.posWeight ? rowMajor(opts.posWeight) : dev.ones([labels]);
  const w = opts.weight ? rowMajor(opts.weight) : null;
  const n = logits.size;
  const lossElems = Tensor.empty(dev, logits.shape);
  const dlogits = Tensor.empty(dev, logits.shape);
  if (n > 0) {
    dev.dispatch(
      bceWithLogitsKernel(),
      [lossElems.storage.buffer, dlogits.storage.buffer, x.storage.buffer, y.storage.buffer, pw.storage.buffer, (w ?? pw).storage.buffer],
      bceParams(n, labels, w !== null),
      bceWorkgroups(n),
    );
  }
  const norm = opts.normalizer ?? n;
  const total = lossElems.sum();
  const out = total.mul(1 / norm);
  // The loss node is replaced: its gradient comes from the saved per-element derivative.
  const result = out.detach();
  if (needsGrad(logits)) {
    record(result, 'bceWithLogits', [logits], [dlogits], (g, [dl]) => [dl.mul(g.mul(1 / norm))]);
  }
  for (const t of [x, y, pw, lossElems, dlogits, total, out]) t.dispose();
  if (w) w.dispose();
  return result;
}
