// LoRA adapters for the ViT's linear layers (the model's blocks call them through VisionTransformer's
// `adapters` hook), their PEFT-style tensor names, and merging them into the weights. Browser-safe.
//
// Targets and names (in a file every name has PEFT's prefix `base_model.model.`):
//   qkv         blocks.L.attn.qkv.lora_A.weight [r, D], blocks.L.attn.qkv.lora_B.weight [3D, r]
//               (PEFT's own names for target_modules=["qkv"] on a timm ViT)
//   qv          blocks.L.attn.qkv.q.lora_{A,B}.weight and blocks.L.attn.qkv.v.lora_{A,B}.weight,
//               B [D, r]: adapters on the q and v row blocks of the fused qkv only (HF's separate
//               `attention.attention.query` / `value` modules; a fused module has no PEFT name for them)
//   all-linear  qkv as above, plus blocks.L.attn.proj, blocks.L.mlp.fc1, blocks.L.mlp.fc2
// The head is trained in full beside them and stored as base_model.model.head.{weight,bias} (how PEFT
// stores modules_to_save). A is drawn as PEFT does (kaiming_uniform with a = √5: U(±1/√in)), B is zero,
// so the adapted model starts as the base model; the update is scaled by alpha / rank.

import type { Device } from '../engine/device.js';
import type { Tensor } from '../engine/tensor.js';
import { VitgpuError } from '../engine/errors.js';
import { keep, tidy } from '../engine/scope.js';
import { noGrad } from '../engine/autograd.js';
import { linear, type LinearOptions } from '../engine/ops/matmul.js';
import { loraLinear } from '../engine/ops/lora.js';
import { concat } from '../engine/ops/views.js';
import type { LinearHook, VisionTransformer, VitConfig } from './vit.js';

export const LORA_TARGETS = ['qkv', 'qv', 'all-linear'] as const;
export type LoraTargets = (typeof LORA_TARGETS)[number];

export interface LoraSettings {
  rank: number;
  alpha: number;
  /** Dropout on the adapters' input during training. */
  dropout: number;
  targets: LoraTargets;
}

/** The (and the follow-up paper's) defaults besides the rank. */
export const LORA_DEFAULTS = { alpha: 16, dropout: 0.05, targets: 'qkv' as LoraTargets };

export const PEFT_PREFIX = 'base_model.model.';

/** A linear layer with adapters: its adapter module per row block of the weight (null: none). */
interface AdaptedLinear {
  linear: string;
  blocks: (string | null)[];
}

function adaptedLinears(config: VitConfig, targets: LoraTargets): AdaptedLinear[] {
  const out: AdaptedLinear[] = [];
  for (let l = 0; l < config.depth; l++) {
    const qkv = `blocks.${l}.attn.qkv`;
    if (targets === 'qv') out.push({ linear: qkv, blocks: [`${qkv}.q`, null, `${qkv}.v`] });
    else out.push({ linear: qkv, blocks: [qkv] });
    if (targets === 'all-linear') {
      for (const m of ['attn.proj', 'mlp.fc1', 'mlp.fc2']) out.push({ linear: `blocks.${l}.${m}`, blocks: [`blocks.${l}.${m}`] });
    }
  }
  return out;
}

/** [in, out] of a linear layer of the ViT. */
function linearShape(config: VitConfig, name: string): [number, number] {
  const d = config.width;
  if (name.endsWith('attn.qkv')) return [d, 3 * d];
  if (name.endsWith('mlp.fc1')) return [d, config.mlpWidth];
  if (name.endsWith('mlp.fc2')) return [config.mlpWidth, d];
  return [d, d];
}

/** Mixes a batch's dropout seed with an adapter's index (a 32-bit hash, so neighbours differ widely). */
function mixSeed(seed: number, index: number): number {
  let h = (seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

export class LoraAdapters implements LinearHook {
  /** Adapter tensors by name without the PEFT prefix (`blocks.0.attn.qkv.lora_A.weight`). */
  readonly params = new Map<string, Tensor>();
  readonly scale: number;
  /** Seed of this training batch's dropout masks; null (evaluation) applies no dropout. */
  dropoutSeed: number | null = null;
  private readonly byLinear = new Map<string, { index: number; blocks: (string | null)[] }>();

  constructor(readonly device: Device, readonly config: VitConfig, readonly settings: LoraSettings, seed = 0) {
    checkLoraSettings(settings);
    this.scale = settings.alpha / settings.rank;
    const r = settings.rank;
    let i = 0;
    adaptedLinears(config, settings.targets).forEach((m, index) => {
      this.byLinear.set(m.linear, { index, blocks: m.blocks });
      const [inF, outF] = linearShape(config, m.linear);
      const blockOut = outF / m.blocks.length;
      for (const name of m.blocks) {
        if (!name) continue;
        const bound = 1 / Math.sqrt(inF);
        const a = device.rand([r, inF], { seed: (seed * 7919 + 50021 + i++) >>> 0, low: -bound, high: bound });
        this.params.set(`${name}.lora_A.weight`, keep(a).requireGrad());
        this.params.set(`${name}.lora_B.weight`, keep(device.zeros([blockOut, r])).requireGrad());
      }
    });
  }

  /** The adapters of the blocks whose names start with `prefix` (for activation checkpointing). */
  parameters(prefix = ''): Tensor[] {
    return [...this.params].filter(([n]) => n.startsWith(prefix)).map(([, t]) => t);
  }

  /** Trainable values: adapter count. */
  get size(): number {
    return [...this.params.values()].reduce((s, t) => s + t.size, 0);
  }

  linear(name: string, x: Tensor, weight: Tensor, bias: Tensor | null, opts: LinearOptions): Tensor {
    const m = this.byLinear.get(name);
    if (!m) return linear(x, weight, bias, opts);
    const adapters = m.blocks.map((b) => (b ? { a: this.params.get(`${b}.lora_A.weight`)!, b: this.params.get(`${b}.lora_B.weight`)! } : null));
    const p = this.settings.dropout;
    const dropout = this.dropoutSeed !== null && p > 0 ? { p, seed: mixSeed(this.dropoutSeed, m.index) } : null;
    return loraLinear(x, weight, bias, { ...opts, scale: this.scale, adapters, dropout });
  }

  /** Sets adapter values by name (without prefix); every adapter must be given, with its shape. */
  async load(values: ReadonlyMap<string, Float32Array>, source: string): Promise<void> {
    for (const [name, t] of this.params) {
      const v = values.get(name);
      if (!v) throw new VitgpuError(`${source}: no LoRA tensor ${PEFT_PREFIX}${name} (rank ${this.settings.rank}, targets ${this.settings.targets})`);
      if (v.length !== t.size) throw new VitgpuError(`${source}: ${PEFT_PREFIX}${name} has ${v.length} values, [${t.shape.join(', ')}] expected`);
      this.device.write(t.storage.buffer, t.offset * 4, v);
    }
    await this.device.sync();
  }

  /** Adds scale·B·A into the model's weights (its linear layers then compute what the adapters did). */
  async mergeInto(model: VisionTransformer): Promise<void> {
    for (const [linearName, m] of this.byLinear) {
      const w = model.param(`${linearName}.weight`);
      const merged = noGrad(() =>
        tidy(() => {
          const rows = w.shape[0] / m.blocks.length;
          const parts = m.blocks.map((b, k) => {
            const block = w.narrow(0, k * rows, rows);
            if (!b) return block;
            const delta = this.params.get(`${b}.lora_B.weight`)!.matmul(this.params.get(`${b}.lora_A.weight`)!);
            return block.add(delta.mul(this.scale));
          });
          return parts.length === 1 ? parts[0].contiguous() : concat(parts, 0);
        }),
      );
      model.setParam(`${linearName}.weight`, await merged.data());
      merged.dispose();
    }
    await this.device.sync();
  }

  dispose(): void {
    for (const t of this.params.values()) {
      t.zeroGrad();
      t.dispose();
    }
    this.params.clear();
  }
}

export function checkLoraSettings(s: LoraSettings): void {
  if (!Number.isInteger(s.rank) || s.rank <= 0) throw new VitgpuError(`--lora-rank must be a positive integer, got ${s.rank}`);
  if (!(s.alpha > 0)) throw new VitgpuError(`--lora-alpha must be positive, got ${s.alpha}`);
  if (!(s.dropout >= 0 && s.dropout < 1)) throw new VitgpuError(`--lora-dropout must be in [0, 1), got ${s.dropout}`);
  if (!LORA_TARGETS.includes(s.targets)) throw new VitgpuError(`--lora-targets must be one of ${LORA_TARGETS.join(', ')}, got "${s.targets}"`);
}

/** Freezes every parameter of the model except the head (LoRA and --freeze-backbone train only these). */
export function freezeBackbone(model: VisionTransformer): void {
  for (const [name, t] of model.params) t.requireGrad(name.startsWith('head.'));
}
