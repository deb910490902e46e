// Reverse-mode automatic differentiation.
//
// An op whose inputs require gradients calls `record()` with its backward rule, written right under
// its forward (see engine/ops/*). The rule receives the tensors it saved and the output's gradient and
// returns one gradient per input (null where none flows). `backward()` visits the graph in reverse
// topological order, sums the gradients of tensors used more than once, stores leaf gradients in
// `.grad`, and frees each node's saved tensors as soon as its rule has run. The graph's node
// (GradNode) lives beside Tensor in engine/tensor.ts, which holds it.

import { GradNode, Tensor, type BackwardRule, type Storage } from './tensor.js';
import { keep, tidy } from './scope.js';
import { sizeClass } from './buffer-pool.js';
import { ShapeError, VitgpuError } from './errors.js';
import { shapeStr } from './shape.js';
import { currentPrecision, withPrecision } from './precision.js';

let gradEnabled = true;

/** Runs `fn` without recording any graph (evaluation, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Runs `fn` recording graphs again (inside noGrad: the recomputation of a checkpointed function). */
export function withGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = true;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** True when an op on these inputs must record its backward. */
export function needsGrad(...inputs: readonly (Tensor | null | undefined)[]): boolean {
  return gradEnabled && inputs.some((t) => t?.requiresGrad);
}

export type { BackwardRule };

/**
 * Marks `out` as produced by an op with backward `rule`. `saved` are tensors the rule reads (inputs or
 * outputs); they stay alive until the rule has run or the graph is dropped.
 */
export function record(out: Tensor, name: string, inputs: readonly Tensor[], saved: readonly Tensor[], rule: BackwardRule): Tensor {
  // A saved tensor whose storage can be recomputed from what its producer saves (see recomputable())
  // is held as those tensors instead, and recomputed, inside backward's scope, just before `rule` runs.
  const held: Tensor[] = [];
  const slots = saved.map((t) => {
    const r = recipes.get(t.storage);
    if (!r || r.node.released) {
      held.push(keep(t.view()));
      return held.length - 1;
    }
    const from = r.from.map((i) => {
      held.push(keep(r.node.saved[i].view()));
      return held.length - 1;
    });
    return { r, from, shape: t.shape, strides: t.strides, offset: t.offset };
  });
  const node = slots.every((s) => typeof s === 'number')
    ? new GradNode(name, inputs, held, rule)
    : new GradNode(name, inputs, held, (g, h) => rule(g, slots.map((s) => {
      if (typeof s === 'number') return h[s];
      const full = s.r.fn(s.from.map((i) => h[i]));
      return new Tensor(full.device, full.storage, s.shape, s.strides, s.offset);
    })));
  held.forEach((t, index) => savers.set(t.storage, { node, index }));
  nodeSlots.set(node, slots);
  out.setGradFn(node);
  return out;
}

interface Recipe {
  /** A node that holds what the storage is recomputed from; `from` indexes its held (saved) views. */
  node: GradNode;
  from: readonly number[];
  fn: (from: readonly Tensor[]) => Tensor;
}

const recipes = new WeakMap<Storage, Recipe>();
/** Per node, where each tensor given to record() went: an index into its held views, or a recipe. */
const nodeSlots = new WeakMap<GradNode, readonly (number | object)[]>();
/** The node that last saved (a view of) a storage, and at which index of its held views. */
const savers = new WeakMap<Storage, { node: GradNode; index: number }>();

/**
 * Declares that the storage of `out` (contiguous, as produced) is `fn` of the tensors `from` that
 * out's own node saved (indexes into out.gradFn.saved). A later op that saves any view of `out` then
 * holds those instead (no extra memory: out's node keeps them anyway until its backward, which runs
 * after the later op's) and recomputes `out` in its backward: GELU's output, recomputed from the
 * pre-activation, is not kept beside it. `fn` must reproduce the values bit for bit.
 */
export function recomputable(out: Tensor, from: readonly number[], fn: (from: readonly Tensor[]) => Tensor): void {
  const node = out.gradFn;
  if (!node || !out.isContiguous || out.offset !== 0) throw new VitgpuError('recomputable: needs a contiguous tensor with a graph node');
  // Indexes of record()'s saved list, resolved to the node's held views; a source that is itself held
  // as a recipe (not as its own view) leaves `out` to be saved as it is.
  const slots = nodeSlots.get(node) ?? [];
  const held = from.map((i) => slots[i]);
  if (held.every((h): h is number => typeof h === 'number')) recipes.set(out.storage, { node, from: held, fn });
}

/** Whether a later op saving (a view of) `t` would hold a recipe's sources instead of `t` itself. */
export function isRecomputable(t: Tensor): boolean {
  const r = recipes.get(t.storage);
  return !!r && !r.node.released;
}

/**
 * Declares that `out` is a contiguous copy (`copy`) of the view `x`. When some op's node already saves
 * x's storage, a later op that saves `out` holds that storage instead and copies again in its backward:
 * attention saves its output, and the projection after it would otherwise save its [B, N, D] copy too.
 * Only where x spans its buffer's size class, so holding it never costs more than holding the copy.
 */
export function recomputableCopy(out: Tensor, x: Tensor, copy: (src: Tensor) => Tensor): void {
  const s = savers.get(x.storage);
  if (!s || s.node.released || sizeClass(x.size * 4) !== x.storage.buffer.bytes) return;
  const { shape, strides, offset } = x;
  recipes.set(out.storage, { node: s.node, from: [s.index], fn: ([src]) => copy(new Tensor(src.device, src.storage, shape, strides, offset)) });
}

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  // Iterative DFS: ViT-B graphs are thousands of nodes deep.
  const stack: [Tensor, number][] = [[root, 0]];
  visited.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.gradFn?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const next = inputs[i];
      if (!visited.has(next) && next.requiresGrad) {
        visited.add(next);
        stack.push([next, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order.reverse();
}

/** Backpropagates from `root` (a scalar unless `grad` is given) into the `.grad` of every leaf. */
export function backward(root: Tensor, grad?: Tensor): void {
  root.assertAlive('backward');
  if (!root.requiresGrad) throw new VitgpuError('backward: the tensor does not require grad (no input had requiresGrad set)');
  if (!grad && root.size !== 1) {
    throw new ShapeError(`backward: ${shapeStr(root.shape)} is not a scalar; pass the output gradient explicitly`);
  }
  if (grad && grad.shape.join() !== root.shape.join()) {
    throw new ShapeError(`backward: gradient ${shapeStr(grad.shape)} does not match output ${shapeStr(root.shape)}`);
  }
  if (root.gradFn?.released) throw new VitgpuError('backward: the graph was already freed (backward runs once per forward pass)');

  noGrad(() => {
    const grads = new Map<Tensor, Tensor>();
    grads.set(root, keep(grad ? grad.view() : root.device.ones(root.shape)));
    for (const t of topoOrder(root)) {
      const g = grads.get(t);
      grads.delete(t);
      const node = t.gradFn;
      if (!g) {
        node?.release(false);
        continue;
      }
      if (!node) {
        // A leaf: accumulate into .grad.
        if (t.grad) {
          const sum = keep(tidy(() => t.grad!.add(g)));
          t.grad.dispose();
          g.dispose();
          t.setGrad(sum);
        } else {
          t.setGrad(g);
        }
        continue;
      }
      if (node.released) throw new VitgpuError(`backward: the graph of ${node.name} was already freed`);
      const inputGrads = tidy(() => {
        const r = node.rule(g, node.saved);
        // Each gradient must be its own tensor: the rule may pass `g` (or one result) through twice.
        const seen = new Set<Tensor>([g]);
        return node.inputs.map((inp, i) => {
          const gi = r[i];
          if (!gi || !inp.requiresGrad) return null;
          if (gi.shape.join() !== inp.shape.join()) {
            throw new ShapeError(`backward of ${node.name}: gradient ${shapeStr(gi.shape)} for input ${i} of shape ${shapeStr(inp.shape)}`);
          }
          const own = seen.has(gi) ? gi.view() : gi;
          seen.add(gi);
          return own;
        });
      });
      g.dispose();
      node.release(false);
      node.inputs.forEach((inp, i) => {
        const gi = inputGrads[i];
        if (!gi) return;
        keep(gi);
        const prev = grads.get(inp);
        if (prev) {
          grads.set(inp, keep(tidy(() => prev.add(gi))));
          prev.dispose();
          gi.dispose();
        } else {
          grads.set(inp, gi);
        }
      });
    }
    for (const g of grads.values()) g.dispose();
  });
}

/**
 * Activation checkpointing (torch.utils.checkpoint): `fn(x)` runs without a graph, so of its
 * activations only the input `x` is kept (its intermediates are freed when it returns). In backward,
 * `fn` runs again on `x` with gradients, and the output's gradient is backpropagated through that
 * recomputed graph: the gradients of `params` (the leaves `fn` reads) accumulate into their `.grad`
 * there, and x's flows on. `fn` must compute the same values twice (draw randomness from fixed seeds);
 * the recomputed graph is freed as soon as its backward has run. Without anything to differentiate
 * (no grad mode, or neither `x` nor a parameter requires grad) it is just `fn(x)`.
 */
export function checkpoint(fn: (x: Tensor) => Tensor, x: Tensor, params: readonly Tensor[]): Tensor {
  if (!needsGrad(x, ...params)) return fn(x);
  const out = noGrad(() => tidy(() => fn(x)));
  const inputNeedsGrad = x.requiresGrad;
  const precision = currentPrecision(); // the recomputation runs in the forward's precision
  return record(out, 'checkpoint', [x], [x], (g, [saved]) => {
    const input = saved.detach().requireGrad(inputNeedsGrad);
    // In its own scope: of the recomputed intermediates only what the graph saves stays for backward.
    const y = withPrecision(precision, () => withGrad(() => tidy(() => fn(input))));
    if (!y.requiresGrad) return [null];
    backward(y, g);
    const gx = input.grad;
    input.setGrad(null);
    return [gx];
  });
}
