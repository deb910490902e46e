// Checkpoint namings: detects which of the four ViT namings a tensor list uses (timm, DINOv2 hub,
// HF ViTModel, HF Dinov2Model, plus vitgpu's own, which is timm's), infers the architecture, and maps
// every canonical parameter (timm naming) to its source tensors. Pure and browser-safe.

import { VitgpuError } from '../engine/errors.js';
import { parameterShapes, type VitConfig } from './vit.js';
import { detectDinov3, dinov3Target } from './checkpoint-dinov3.js';

export type CheckpointFormat = 'timm' | 'dinov2-hub' | 'hf-vit' | 'hf-dinov2' | 'hf-dinov3' | 'dinov3-hub' | 'vitgpu';

export class CheckpointError extends VitgpuError {}

/** How a canonical parameter is assembled from the file. */
export interface SourceEntry {
  /** Source tensor names; more than one are concatenated along axis 0 (HF's query, key, value → qkv). */
  sources: string[];
  /** Zero rows inserted before source `at` (HF DINOv3 has no key bias: q, zeros, v). */
  zeroRows?: { at: number; rows: number };
}

export interface CheckpointPlan {
  format: CheckpointFormat;
  /** Prefix stripped from every name (`vit.`, `dinov2.`, `model.`, `module.`), or ''. */
  prefix: string;
  /** Architecture read off the shapes (heads assume 64-wide heads unless metadata says otherwise). */
  config: VitConfig;
  /** Whether config.heads was read from the file's metadata (vitgpu checkpoints) rather than assumed. */
  headsStored: boolean;
  /** canonical name -> sources, for every canonical parameter present. */
  entries: Map<string, SourceEntry>;
  /** Tensors in the file that the model does not use (pooler, mask token, ...). */
  unexpected: string[];
}

const HF_LAYER: [RegExp, string][] = [
  [/^encoder\.layer\.(\d+)\.layernorm_before\.(weight|bias)$/, 'blocks.$1.norm1.$2'],
  [/^encoder\.layer\.(\d+)\.norm1\.(weight|bias)$/, 'blocks.$1.norm1.$2'],
  [/^encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)$/, 'blocks.$1.attn.proj.$2'],
  [/^encoder\.layer\.(\d+)\.layer_scale1\.lambda1$/, 'blocks.$1.ls1.gamma'],
  [/^encoder\.layer\.(\d+)\.layernorm_after\.(weight|bias)$/, 'blocks.$1.norm2.$2'],
  [/^encoder\.layer\.(\d+)\.norm2\.(weight|bias)$/, 'blocks.$1.norm2.$2'],
  [/^encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)$/, 'blocks.$1.mlp.fc1.$2'],
  [/^encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)$/, 'blocks.$1.mlp.fc2.$2'],
  [/^encoder\.layer\.(\d+)\.mlp\.fc1\.(weight|bias)$/, 'blocks.$1.mlp.fc1.$2'],
  [/^encoder\.layer\.(\d+)\.mlp\.fc2\.(weight|bias)$/, 'blocks.$1.mlp.fc2.$2'],
  [/^encoder\.layer\.(\d+)\.layer_scale2\.lambda1$/, 'blocks.$1.ls2.gamma'],
];

const HF_FIXED: Record<string, string> = {
  'embeddings.cls_token': 'cls_token',
  'embeddings.position_embeddings': 'pos_embed',
  'embeddings.patch_embeddings.projection.weight': 'patch_embed.proj.weight',
  'embeddings.patch_embeddings.projection.bias': 'patch_embed.proj.bias',
  'embeddings.register_tokens': 'reg_token',
  'layernorm.weight': 'norm.weight',
  'layernorm.bias': 'norm.bias',
  'classifier.weight': 'head.weight',
  'classifier.bias': 'head.bias',
};

const TIMM_RENAMES: Record<string, string> = {
  register_tokens: 'reg_token', // DINOv2 hub with registers
};

function detectPrefix(names: string[]): string {
  for (const p of ['vit.', 'dinov2.', 'model.', 'module.', 'backbone.']) {
    // Heads (and DINO's training heads beside a `backbone.`) do not decide the prefix.
    const body = names.filter((n) => !/^(classifier|head|fc|dino_head|ibot_head)\./.test(n));
    if (body.length > 0 && body.every((n) => n.startsWith(p))) return p;
  }
  return '';
}

function detectFormat(names: Set<string>, metadata: Record<string, string>): CheckpointFormat {
  if (metadata.format === 'vitgpu') return 'vitgpu';
  const dinov3 = detectDinov3(names);
  if (dinov3) return dinov3;
  if (names.has('embeddings.patch_embeddings.projection.weight')) {
    if (names.has('encoder.layer.0.layernorm_before.weight')) return 'hf-vit';
    if (names.has('encoder.layer.0.norm1.weight')) return 'hf-dinov2';
    throw new CheckpointError('HF-style embeddings found, but no encoder.layer.0.{layernorm_before,norm1}.weight: not a ViT or Dinov2 model');
  }
  if (names.has('patch_embed.proj.weight')) return names.has('blocks.0.ls1.gamma') ? 'dinov2-hub' : 'timm';
  throw new CheckpointError('no patch embedding found (looked for patch_embed.proj.weight and embeddings.patch_embeddings.projection.weight): not a ViT checkpoint');
}

/**
 * Works out the format, architecture and name mapping of a checkpoint from its tensor names and
 * shapes. `imageSize` is the size the model will run at (the stored positional grid may differ).
 */
/** The model config vitgpu stores in __metadata__.config; an error naming the file when it is not a JSON object. */
function parseMetaConfig(text: string | undefined, where: string): Partial<VitConfig> {
  if (!text) return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(`${where}__metadata__.config is not valid JSON (${(err as Error).message}); the file is damaged: re-save it, or remove that key`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new CheckpointError(`${where}__metadata__.config must be a JSON object, got ${JSON.stringify(v)}`);
  return v as Partial<VitConfig>;
}

export function planCheckpoint(
  shapes: ReadonlyMap<string, readonly number[]>,
  metadata: Record<string, string> = {},
  opts: { imageSize?: number; source?: string } = {},
): CheckpointPlan {
  const where = opts.source ? `${opts.source}: ` : '';
  const all = [...shapes.keys()];
  const prefix = detectPrefix(all);
  const strip = (n: string) => (prefix && n.startsWith(prefix) ? n.slice(prefix.length) : n);
  const local = new Map(all.map((n) => [strip(n), n] as const));
  let format: CheckpointFormat;
  try {
    format = detectFormat(new Set(local.keys()), metadata);
  } catch (err) {
    throw new CheckpointError(`${where}${(err as Error).message}`);
  }
  const hf = format === 'hf-vit' || format === 'hf-dinov2';
  const dinov3 = format === 'hf-dinov3' || format === 'dinov3-hub' ? format : null;

  // canonical -> sources; everything unclaimed is unexpected.
  const entries = new Map<string, SourceEntry>();
  const claimed = new Set<string>();
  const implied = new Set<string>(); // read by the architecture, not loaded (DINOv3's RoPE periods, key-bias mask)
  const qkvParts = new Map<string, Map<string, string>>(); // "L.weight" -> {query|key|value -> source}
  for (const [name, src] of local) {
    let canonical: string | null = null;
    if (dinov3) {
      const target = dinov3Target(dinov3, name);
      if (target?.kind === 'qkv') {
        const key = `${target.layer}.${target.param}`;
        if (!qkvParts.has(key)) qkvParts.set(key, new Map());
        qkvParts.get(key)!.set({ q: 'query', k: 'key', v: 'value' }[target.part], src);
        claimed.add(src);
        continue;
      }
      if (target?.kind === 'implied') {
        implied.add(src);
        continue;
      }
      canonical = target?.name ?? null;
    } else if (hf) {
      canonical = HF_FIXED[name] ?? null;
      const m = /^encoder\.layer\.(\d+)\.attention\.attention\.(query|key|value)\.(weight|bias)$/.exec(name);
      if (m) {
        const key = `${m[1]}.${m[3]}`;
        if (!qkvParts.has(key)) qkvParts.set(key, new Map());
        qkvParts.get(key)!.set(m[2], src);
        claimed.add(src);
        continue;
      }
      if (!canonical) {
        for (const [re, to] of HF_LAYER) {
          if (re.test(name)) {
            canonical = name.replace(re, to);
            break;
          }
        }
      }
    } else {
      canonical = TIMM_RENAMES[name] ?? name;
    }
    if (canonical) {
      entries.set(canonical, { sources: [src] });
      claimed.add(src);
    }
  }
  for (const [key, parts] of qkvParts) {
    const [layer, kind] = key.split('.');
    if (dinov3 && kind === 'bias' && !parts.has('key') && parts.has('query') && parts.has('value')) {
      // DINOv3 has no key bias: the fused bias gets zeros there (and the model holds them at zero).
      entries.set(`blocks.${layer}.attn.qkv.bias`, { sources: [parts.get('query')!, parts.get('value')!], zeroRows: { at: 1, rows: shapes.get(parts.get('query')!)![0] } });
      continue;
    }
    const missing = ['query', 'key', 'value'].filter((p) => !parts.has(p));
    if (missing.length) {
      throw new CheckpointError(`${where}layer ${layer} has no attention ${missing.join(', ')} ${kind}`);
    }
    entries.set(`blocks.${layer}.attn.qkv.${kind}`, { sources: ['query', 'key', 'value'].map((p) => parts.get(p)!) });
  }

  const shapeOf = (canonical: string): readonly number[] | undefined => {
    const e = entries.get(canonical);
    if (!e) return undefined;
    const first = shapes.get(e.sources[0])!;
    if (e.sources.length === 1 && !e.zeroRows) return first;
    return [e.sources.reduce((s, n) => s + shapes.get(n)![0], e.zeroRows?.rows ?? 0), ...first.slice(1)];
  };

  const patch = shapeOf('patch_embed.proj.weight')!;
  if (patch.length !== 4 || patch[2] !== patch[3]) {
    throw new CheckpointError(`${where}patch embedding weight has shape [${patch.join(', ')}], expected [D, 3, P, P]`);
  }
  const width = patch[0];
  let depth = 0;
  for (const k of entries.keys()) {
    const m = /^blocks\.(\d+)\./.exec(k);
    if (m) depth = Math.max(depth, Number(m[1]) + 1);
  }
  const pos = shapeOf('pos_embed');
  const posTokens = pos ? pos[pos.length - 2] : 0;
  const posGrid = Math.round(Math.sqrt(posTokens - 1));
  const fc1 = shapeOf('blocks.0.mlp.fc1.weight');
  const head = shapeOf('head.weight');
  const reg = shapeOf('reg_token');
  const imageSize = opts.imageSize ?? (Number(metadata.image_size) || 224);
  const metaConfig = parseMetaConfig(metadata.config, where);
  const rope = metaConfig.rope ?? (dinov3 ? 100 : undefined);
  const config: VitConfig = {
    name: metaConfig.name ?? (width === 768 ? (patch[2] === 14 ? 'vit-b14' : `vit-b${patch[2]}${dinov3 ? '-dinov3' : ''}`) : `vit-${width}w-p${patch[2]}`),
    patchSize: patch[2],
    imageSize,
    width,
    depth,
    heads: metaConfig.heads ?? Math.max(1, Math.round(width / 64)),
    mlpWidth: fc1 ? fc1[0] : 4 * width,
    layerScale: entries.has('blocks.0.ls1.gamma'),
    qkvBias: entries.has('blocks.0.attn.qkv.bias'),
    eps: metaConfig.eps ?? (format === 'hf-vit' ? 1e-12 : dinov3 ? 1e-5 : 1e-6),
    registers: reg ? reg[reg.length - 2] : 0,
    labels: head && head.length === 2 && head[1] === width ? head[0] : 0,
    ...(rope ? { rope, maskKeyBias: metaConfig.maskKeyBias ?? Boolean(dinov3) } : { posGrid, posResize: metaConfig.posResize ?? (format === 'dinov2-hub' ? 'dinov2-hub' : 'size') }),
  };
  if (!rope && (!Number.isInteger(posGrid) || posGrid * posGrid !== posTokens - 1)) {
    throw new CheckpointError(`${where}pos_embed has ${posTokens - 1} patch positions, not a square grid`);
  }
  if (head && metadata.labels !== undefined) {
    // vitgpu's own checkpoints name their labels; a head with another row count would print names over the wrong values.
    const names = metadata.labels.split(',').filter(Boolean);
    if (names.length > 0 && names.length !== head[0]) {
      throw new CheckpointError(
        `${where}the head has ${head[0]} outputs (head.weight [${head.join(', ')}]), but the metadata names ${names.length} labels (${names.join(', ')}); the file is inconsistent`,
      );
    }
  }
  if (head && config.labels === 0) entries.delete('head.weight'), entries.delete('head.bias'); // a head of another width (HF Dinov2: CLS+mean)

  const unexpected = all.filter((n) => !implied.has(n) && (!claimed.has(n) || ![...entries.values()].some((e) => e.sources.includes(n))));
  // Keep only names the model has; the rest are unexpected too.
  const known = new Set(parameterShapes(config).map(([n]) => n));
  for (const k of [...entries.keys()]) {
    if (!known.has(k)) {
      unexpected.push(...entries.get(k)!.sources);
      entries.delete(k);
    }
  }
  return { format, prefix, config, headsStored: metaConfig.heads !== undefined, entries, unexpected: [...new Set(unexpected)].sort() };
}
