// A configurable Vision Transformer (ViT-B/16, ViT-B/14 as in timm and DINOv2, ViT-B/16 as in DINOv3)
// on the engine's ops.
// Parameters carry timm's names (the canonical naming; models/checkpoint.ts maps the others onto it),
// so checkpoints save and load by name. Browser-safe.

import type { Device } from '../engine/device.js';
import { Tensor } from '../engine/tensor.js';
import { ShapeError, VitgpuError } from '../engine/errors.js';
import { attention, attentionQkv } from '../engine/ops/attention.js';
import { concat } from '../engine/ops/views.js';
import { layerNorm } from '../engine/ops/layernorm.js';
import { linear, type LinearOptions } from '../engine/ops/matmul.js';
import { patchEmbed } from '../engine/ops/conv.js';
import { keep, tidy } from '../engine/scope.js';
import { checkpoint, noGrad } from '../engine/autograd.js';
import { withPrecision, type Precision } from '../engine/precision.js';
import { bicubicResizeMatrix, type PosResizeMode } from './pos-embed.js';
import { applyRope, ropeTables } from './rope.js';

export interface VitConfig {
  /** Preset or free-form name, recorded in checkpoints. */
  name: string;
  patchSize: number;
  /** Input size the model runs at (square). */
  imageSize: number;
  width: number;
  depth: number;
  heads: number;
  mlpWidth: number;
  /** DINOv2's per-channel residual scales (ls1, ls2). */
  layerScale: boolean;
  qkvBias: boolean;
  /** LayerNorm epsilon: 1e-6 (timm, DINOv2) or 1e-12 (HF ViT). */
  eps: number;
  /** DINOv2-style register tokens (0 for none). */
  registers: number;
  /** Classification labels; 0 for no head (features only). */
  labels: number;
  /** Side of the stored positional grid (37 for DINOv2's 518 px); defaults to imageSize / patchSize. */
  posGrid?: number;
  /** How a stored grid of another size is resized to the input's (see models/pos-embed.ts). */
  posResize?: PosResizeMode;
  /** DINOv3: 2-D rotary position embeddings with this base (theta) instead of a learned grid (see models/rope.ts). */
  rope?: number;
  /** DINOv3: the key part of the fused qkv bias is held at zero (the original code masks it; HF has no key bias). */
  maskKeyBias?: boolean;
}

const VIT_B = { width: 768, depth: 12, heads: 12, mlpWidth: 3072, qkvBias: true, registers: 0, labels: 0 };

export const PRESETS: Record<string, Omit<VitConfig, 'name'>> = {
  /** timm vit_base_patch16_224 (ImageNet-21K AugReg), HF google/vit-base-patch16-224-in21k (eps 1e-12). */
  'vit-b16': { ...VIT_B, patchSize: 16, imageSize: 224, layerScale: false, eps: 1e-6 },
  /** DINOv2 ViT-B/14: LayerScale, stored 37×37 grid (518 px), run at 224 px as in the paper. */
  'vit-b14': { ...VIT_B, patchSize: 14, imageSize: 224, layerScale: true, eps: 1e-6, posGrid: 37, posResize: 'dinov2-hub' },
  /** DINOv3 ViT-B/16 (facebook/dinov3-vitb16-pretrain-lvd1689m): RoPE, 4 registers, LayerScale, no key bias, eps 1e-5. */
  'vit-b16-dinov3': { ...VIT_B, patchSize: 16, imageSize: 224, layerScale: true, eps: 1e-5, registers: 4, rope: 100, maskKeyBias: true },
  'vit-s16': { ...VIT_B, width: 384, heads: 6, mlpWidth: 1536, patchSize: 16, imageSize: 224, layerScale: false, eps: 1e-6 },
  'vit-ti16': { ...VIT_B, width: 192, heads: 3, mlpWidth: 768, patchSize: 16, imageSize: 224, layerScale: false, eps: 1e-6 },
  /** Tiny configs for tests and CPU demos. */
  'vit-tiny-test': { width: 32, depth: 2, heads: 2, mlpWidth: 64, patchSize: 8, imageSize: 32, layerScale: false, eps: 1e-6, qkvBias: true, registers: 0, labels: 0 },
  'vit-micro': { width: 64, depth: 4, heads: 4, mlpWidth: 128, patchSize: 8, imageSize: 64, layerScale: false, eps: 1e-6, qkvBias: true, registers: 0, labels: 0 },
};

export function presetConfig(name: string, overrides: Partial<VitConfig> = {}): VitConfig {
  const p = PRESETS[name];
  if (!p) throw new VitgpuError(`unknown architecture "${name}"; known: ${Object.keys(PRESETS).join(', ')}`);
  return { name, ...p, ...overrides };
}

export function validateConfig(c: VitConfig): void {
  const bad = (what: string) => {
    throw new VitgpuError(`ViT config "${c.name}": ${what}`);
  };
  for (const k of ['patchSize', 'imageSize', 'width', 'depth', 'heads', 'mlpWidth'] as const) {
    if (!Number.isInteger(c[k]) || c[k] <= 0) bad(`${k} must be a positive integer, got ${c[k]}`);
  }
  if (c.width % c.heads !== 0) bad(`width ${c.width} is not divisible by ${c.heads} heads`);
  if (c.imageSize < c.patchSize) bad(`image size ${c.imageSize} is smaller than the patch size ${c.patchSize}`);
  if (c.imageSize % c.patchSize !== 0) {
    const lo = c.imageSize - (c.imageSize % c.patchSize);
    bad(`image size ${c.imageSize} is not a multiple of the patch size ${c.patchSize} (the model would see only ${lo}×${lo} of each image); use ${lo} or ${lo + c.patchSize}`);
  }
  if (!Number.isInteger(c.registers) || c.registers < 0) bad(`registers must be >= 0`);
  if (!Number.isInteger(c.labels) || c.labels < 0) bad(`labels must be >= 0`);
  if (c.rope !== undefined && (!(c.rope > 0) || (c.width / c.heads) % 4 !== 0)) bad(`rotary embeddings need a positive theta and a head width divisible by 4`);
  if (c.maskKeyBias && !c.qkvBias) bad('maskKeyBias needs a qkv bias');
}

/** Canonical parameter names and shapes of a config, in a stable order. */
export function parameterShapes(c: VitConfig): [string, number[]][] {
  const d = c.width;
  const grid = c.posGrid ?? Math.floor(c.imageSize / c.patchSize);
  const out: [string, number[]][] = [
    ['cls_token', [1, 1, d]],
    ['patch_embed.proj.weight', [d, 3, c.patchSize, c.patchSize]],
    ['patch_embed.proj.bias', [d]],
  ];
  if (!c.rope) out.splice(1, 0, ['pos_embed', [1, grid * grid + 1, d]]);
  if (c.registers > 0) out.push(['reg_token', [1, c.registers, d]]);
  for (let l = 0; l < c.depth; l++) {
    const b = `blocks.${l}`;
    out.push([`${b}.norm1.weight`, [d]], [`${b}.norm1.bias`, [d]]);
    out.push([`${b}.attn.qkv.weight`, [3 * d, d]]);
    if (c.qkvBias) out.push([`${b}.attn.qkv.bias`, [3 * d]]);
    out.push([`${b}.attn.proj.weight`, [d, d]], [`${b}.attn.proj.bias`, [d]]);
    if (c.layerScale) out.push([`${b}.ls1.gamma`, [d]]);
    out.push([`${b}.norm2.weight`, [d]], [`${b}.norm2.bias`, [d]]);
    out.push([`${b}.mlp.fc1.weight`, [c.mlpWidth, d]], [`${b}.mlp.fc1.bias`, [c.mlpWidth]]);
    out.push([`${b}.mlp.fc2.weight`, [d, c.mlpWidth]], [`${b}.mlp.fc2.bias`, [d]]);
    if (c.layerScale) out.push([`${b}.ls2.gamma`, [d]]);
  }
  out.push(['norm.weight', [d]], ['norm.bias', [d]]);
  if (c.labels > 0) out.push(['head.weight', [c.labels, d]], ['head.bias', [c.labels]]);
  return out;
}

/** What the blocks' linear layers run through when set: LoRA adapters (models/lora.ts). */
export interface LinearHook {
  /** x·Wᵀ + b (+ options) of the linear layer `name` (`blocks.0.attn.qkv`), with its adapters. */
  linear(name: string, x: Tensor, weight: Tensor, bias: Tensor | null, opts: LinearOptions): Tensor;
  /** The hook's own parameters used by the layers whose names start with `prefix`. */
  parameters(prefix: string): Tensor[];
}

export interface VitOutput {
  /** Final-norm CLS token [B, width]. */
  embedding: Tensor;
  /** Head output [B, labels], or null without a head. */
  logits: Tensor | null;
  /** Every final-norm token [B, 1 + registers + patches, D] (features: the patch-token mean). */
  tokens: Tensor;
}

export class VisionTransformer {
  readonly params = new Map<string, Tensor>();
  /** LoRA adapters the blocks' linear layers run through (models/lora.ts), or null. */
  adapters: LinearHook | null = null;
  /** Recompute each block in backward instead of keeping its activations (engine/autograd.ts checkpoint). */
  checkpointActivations = false;
  /**
   * 'mixed': the linear layers read f16 operands and accumulate in f32 (engine/precision.ts); null:
   * the precision in effect where forward runs (f32 unless a command set --precision).
   */
  precision: Precision | null = null;
  private readonly resizeCache = new Map<string, [Tensor, Tensor]>();
  /** Constant tensors (RoPE tables per grid, the key-bias mask), kept until dispose(). */
  private readonly constants = new Map<string, Tensor>();

  /**
   * `uninitialized` names parameters a checkpoint is about to fill: they get memory but no random init
   * (loading then costs one copy of the weights, not two).
   */
  constructor(readonly device: Device, readonly config: VitConfig, opts: { seed?: number; uninitialized?: (name: string) => boolean } = {}) {
    validateConfig(config);
    const seed = opts.seed ?? 0;
    parameterShapes(config).forEach(([name, shape], i) => {
      const t = opts.uninitialized?.(name) ? Tensor.empty(device, shape) : this.initParam(name, shape, seed * 7919 + i);
      this.params.set(name, keep(t).requireGrad());
    });
  }

  /** timm's initialization: normal(0.02) weights and embeddings, zero biases, unit norms, LayerScale 1e-5. */
  private initParam(name: string, shape: number[], seed: number): Tensor {
    const d = this.device;
    if (name.endsWith('.bias')) return d.zeros(shape);
    if (/norm\d?\.weight$/.test(name) || name === 'norm.weight') return d.ones(shape);
    if (name.endsWith('.gamma')) return d.full(shape, 1e-5);
    if (name === 'cls_token' || name === 'reg_token') return d.randn(shape, { seed, std: 1e-6 });
    return d.randn(shape, { seed, std: 0.02 });
  }

  get gridSize(): number {
    return Math.floor(this.config.imageSize / this.config.patchSize);
  }

  param(name: string): Tensor {
    const t = this.params.get(name);
    if (!t) throw new VitgpuError(`model ${this.config.name} has no parameter "${name}"`);
    return t;
  }

  parameters(): Tensor[] {
    return [...this.params.values()];
  }

  /** Replaces a parameter's values (shape must match); the tensor stays the same object. */
  setParam(name: string, values: Float32Array): void {
    const p = this.param(name);
    if (values.length !== p.size) {
      throw new ShapeError(`parameter ${name}: ${values.length} values for shape [${p.shape.join(', ')}]`);
    }
    this.device.write(p.storage.buffer, p.offset * 4, values);
  }

  /** Replaces the classification head with a fresh one for `labels` outputs (0 removes it). */
  resetHead(labels: number, seed = 0): void {
    for (const n of ['head.weight', 'head.bias']) {
      this.params.get(n)?.dispose();
      this.params.delete(n);
    }
    (this.config as { labels: number }).labels = labels;
    if (labels > 0) {
      this.params.set('head.weight', keep(this.device.randn([labels, this.config.width], { seed, std: 0.02 })).requireGrad());
      this.params.set('head.bias', keep(this.device.zeros([labels])).requireGrad());
    }
  }

  /** Positional embeddings for a gh×gw patch grid: [1, 1 + gh·gw, D] (resized when the stored grid differs). */
  positions(gh: number, gw: number): Tensor {
    const pos = this.param('pos_embed');
    const stored = Math.round(Math.sqrt(pos.shape[1] - 1));
    if (stored * stored !== pos.shape[1] - 1) throw new ShapeError(`pos_embed ${pos.shape[1] - 1} positions do not form a square grid`);
    const d = this.config.width;
    if (stored === gh && stored === gw) return pos;
    // Bicubic resize is linear in the grid: two constant matrices, so gradients reach the stored grid.
    const key = `${gh}x${gw}`;
    let mats = this.resizeCache.get(key);
    if (!mats) {
      const mode = this.config.posResize ?? 'size';
      mats = [
        keep(this.device.tensor(bicubicResizeMatrix(stored, gh, mode), [gh, stored])),
        keep(this.device.tensor(bicubicResizeMatrix(stored, gw, mode), [gw, stored])),
      ];
      this.resizeCache.set(key, mats);
    }
    const [my, mx] = mats;
    const cls = pos.narrow(1, 0, 1);
    const grid = pos.narrow(1, 1, stored * stored).reshape([stored, stored * d]);
    const rows = my.matmul(grid).reshape([gh, stored, d]); // resize along y
    const both = mx.matmul(rows); // [gw, stored] · [gh, stored, D] -> [gh, gw, D]
    return concat([cls, both.reshape([1, gh * gw, d])], 1);
  }

  forward(images: Tensor): VitOutput {
    return this.precision ? withPrecision(this.precision, () => this.forwardIn(images)) : this.forwardIn(images);
  }

  private forwardIn(images: Tensor): VitOutput {
    const c = this.config;
    const x = this.tokens(images, c.depth);
    const p = (n: string) => this.param(n);
    const [b, , d] = x.shape;
    const normed = layerNorm(x, p('norm.weight'), p('norm.bias'), c.eps);
    x.dispose();
    const embedding = normed.narrow(1, 0, 1).reshape([b, d]);
    const logits = c.labels > 0 ? linear(embedding, p('head.weight'), p('head.bias')) : null;
    return { embedding, logits, tokens: normed };
  }

  /**
   * The token sequence [B, 1 + registers + patches, D] after the patch embedding and the first `blocks`
   * transformer blocks (forward runs all of them; models/attention-map.ts stops before the last).
   */
  tokens(images: Tensor, blocks: number): Tensor {
    const c = this.config;
    if (images.rank !== 4 || images.shape[1] !== 3) {
      throw new ShapeError(`ViT: images must be [B, 3, H, W], got [${images.shape.join(', ')}]`);
    }
    const [b, , h, w] = images.shape;
    const d = c.width;
    const gh = Math.floor(h / c.patchSize);
    const gw = Math.floor(w / c.patchSize);
    const p = (n: string) => this.param(n);

    // Each stage runs in its own tidy() and the previous token tensor is disposed once the next exists:
    // without a graph its memory is free at once, with one only what backward needs stays (saved views).
    let x = tidy(() => {
      let e = patchEmbed(images, p('patch_embed.proj.weight'), p('patch_embed.proj.bias'), c.patchSize); // [B, L, D]
      e = concat([p('cls_token').expand([b, 1, d]), e], 1);
      if (!c.rope) e = e.add(this.positions(gh, gw));
      if (c.registers > 0) {
        e = concat([e.narrow(1, 0, 1), p('reg_token').expand([b, c.registers, d]), e.narrow(1, 1, gh * gw)], 1);
      }
      return e;
    });
    const n = x.shape[1];
    for (let l = 0; l < blocks; l++) {
      const pre = `blocks.${l}`;
      // One transformer block as a function of its input, so it can be recomputed in backward (the body
      // keeps the loop's indentation).
      const block = (x: Tensor): Tensor => {
      // Without RoPE the heads are read straight out of the fused qkv projection (no copies).
      const a = c.rope
        ? this.attendRotated(l, x, gh, gw).permute([0, 2, 1, 3]).reshape([b, n, d])
        : attentionQkv(this.qkvProjection(l, x), c.heads);
      // Without LayerScale the residual add happens in the projection's matmul epilogue.
      x = c.layerScale
        ? x.add(this.linear(`${pre}.attn.proj`, a).mul(p(`${pre}.ls1.gamma`)))
        : this.linear(`${pre}.attn.proj`, a, { residual: x });
      const h2 = layerNorm(x, p(`${pre}.norm2.weight`), p(`${pre}.norm2.bias`), c.eps);
      const hidden = this.linear(`${pre}.mlp.fc1`, h2, { gelu: true });
      x = c.layerScale
        ? x.add(this.linear(`${pre}.mlp.fc2`, hidden).mul(p(`${pre}.ls2.gamma`)))
        : this.linear(`${pre}.mlp.fc2`, hidden, { residual: x });
      return x;
      };
      const input = x;
      x = tidy(() => (this.checkpointActivations ? checkpoint(block, input, this.blockParameters(pre)) : block(input)));
      input.dispose();
    }
    return x;
  }

  /**
   * Block `l`'s attention inputs for tokens x [B, N, D] of a gh×gw patch grid: q, k, v [B, H, N, dh],
   * after the pre-attention norm, the qkv projection and (DINOv3) the rotary embeddings.
   */
  queryKeyValue(l: number, x: Tensor, gh: number, gw: number): { q: Tensor; k: Tensor; v: Tensor } {
    const c = this.config;
    const [b, n] = x.shape;
    const qkv = this.qkvProjection(l, x)
      .reshape([b, n, 3, c.heads, c.width / c.heads])
      .permute([2, 0, 3, 1, 4]); // [3, B, H, N, dh]
    let q = qkv.narrow(0, 0, 1).squeeze(0);
    let k = qkv.narrow(0, 1, 1).squeeze(0);
    if (c.rope) {
      const [cos, sin] = this.ropeFor(gh, gw);
      q = applyRope(q, cos, sin, 1 + c.registers);
      k = applyRope(k, cos, sin, 1 + c.registers);
    }
    return { q, k, v: qkv.narrow(0, 2, 1).squeeze(0) };
  }

  /** Block `l`'s fused projection [B, N, 3·D] (q, k, v side by side) of its normalized input. */
  private qkvProjection(l: number, x: Tensor): Tensor {
    const c = this.config;
    const pre = `blocks.${l}`;
    const hN = layerNorm(x, this.param(`${pre}.norm1.weight`), this.param(`${pre}.norm1.bias`), c.eps);
    return this.linear(`${pre}.attn.qkv`, hN, {}, c.qkvBias ? this.qkvBias(pre) : null);
  }

  /** Block `l`'s attention output [B, H, N, dh] with the rotary embeddings applied to q and k. */
  private attendRotated(l: number, x: Tensor, gh: number, gw: number): Tensor {
    const { q, k, v } = this.queryKeyValue(l, x, gh, gw);
    return attention(q, k, v);
  }

  /** The RoPE cos and sin tables [gh·gw, head width] for a patch grid (cached). */
  private ropeFor(gh: number, gw: number): [Tensor, Tensor] {
    const dh = this.config.width / this.config.heads;
    return [`rope-cos-${gh}x${gw}`, `rope-sin-${gh}x${gw}`].map((key, i) => {
      let t = this.constants.get(key);
      if (!t) {
        const tables = ropeTables(gh, gw, dh, this.config.rope!);
        t = keep(this.device.tensor(i === 0 ? tables.cos : tables.sin, [gh * gw, dh]));
        this.constants.set(key, t);
      }
      return t;
    }) as [Tensor, Tensor];
  }

  /** The fused qkv bias, with its key part held at zero where the model has no key bias (DINOv3). */
  private qkvBias(pre: string): Tensor {
    const bias = this.param(`${pre}.attn.qkv.bias`);
    if (!this.config.maskKeyBias) return bias;
    let mask = this.constants.get('key-bias-mask');
    if (!mask) {
      const d = this.config.width;
      mask = keep(this.device.tensor(Float32Array.from({ length: 3 * d }, (_, i) => (i >= d && i < 2 * d ? 0 : 1)), [3 * d]));
      this.constants.set('key-bias-mask', mask);
    }
    // The mask also zeroes the key part's gradient, so training never moves it.
    return bias.mul(mask);
  }

  /** y = x·Wᵀ + b of the linear layer `name` (`blocks.0.attn.qkv`), through the adapters when set. */
  private linear(name: string, x: Tensor, opts: LinearOptions = {}, bias = this.params.get(`${name}.bias`) ?? null): Tensor {
    const w = this.param(`${name}.weight`);
    return this.adapters ? this.adapters.linear(name, x, w, bias, opts) : linear(x, w, bias, opts);
  }

  /** The parameters block `pre` (`blocks.3`) reads, adapters included. */
  private blockParameters(pre: string): Tensor[] {
    const own = [...this.params].filter(([n]) => n.startsWith(`${pre}.`)).map(([, t]) => t);
    return [...own, ...(this.adapters?.parameters(`${pre}.`) ?? [])];
  }

  /** Forward without recording gradients. */
  predict(images: Tensor): VitOutput {
    return noGrad(() => this.forward(images));
  }

  dispose(): void {
    for (const t of this.params.values()) {
      t.zeroGrad();
      t.dispose();
    }
    for (const t of this.constants.values()) t.dispose();
    this.constants.clear();
    for (const [a, b] of this.resizeCache.values()) {
      a.dispose();
      b.dispose();
    }
    this.params.clear();
    this.resizeCache.clear();
  }
}
