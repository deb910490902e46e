// DINOv3's two namings, mapped onto vitgpu's canonical (timm) names. Browser-safe.
//
// | part            | Hugging Face DINOv3ViTModel                      | original hub (facebookresearch/dinov3) |
// |-----------------|--------------------------------------------------|----------------------------------------|
// | class token     | embeddings.cls_token                             | cls_token                              |
// | registers       | embeddings.register_tokens [1, 4, D]             | storage_tokens                         |
// | patch conv      | embeddings.patch_embeddings.{weight,bias}        | patch_embed.proj.*                     |
// | positions       | none: RoPE (theta 100)                           | none: rope_embed.periods (a buffer)    |
// | q, k, v         | layer.L.attention.{q,k,v}_proj.* (no k bias)     | blocks.L.attn.qkv.* with qkv.bias_mask |
// | attn out        | layer.L.attention.o_proj.*                       | blocks.L.attn.proj.*                   |
// | LayerScale      | layer.L.layer_scale{1,2}.lambda1                 | blocks.L.ls{1,2}.gamma                 |
// | MLP             | layer.L.mlp.{up,down}_proj.*                     | blocks.L.mlp.fc{1,2}.*                 |
// | norms           | layer.L.norm{1,2}.*, norm.*                      | blocks.L.norm{1,2}.*, norm.*           |
// The key bias: HF has none; the original stores one and multiplies it by bias_mask (zero over the key
// part). vitgpu holds the key part of its fused bias at zero (VitConfig.maskKeyBias), which is both.

export type Dinov3Format = 'hf-dinov3' | 'dinov3-hub';

export function detectDinov3(names: ReadonlySet<string>): Dinov3Format | null {
  if (names.has('embeddings.patch_embeddings.weight') && names.has('layer.0.attention.q_proj.weight')) return 'hf-dinov3';
  if (names.has('patch_embed.proj.weight') && !names.has('pos_embed') && (names.has('storage_tokens') || names.has('rope_embed.periods'))) return 'dinov3-hub';
  return null;
}

const HF_FIXED: Record<string, string> = {
  'embeddings.cls_token': 'cls_token',
  'embeddings.register_tokens': 'reg_token',
  'embeddings.patch_embeddings.weight': 'patch_embed.proj.weight',
  'embeddings.patch_embeddings.bias': 'patch_embed.proj.bias',
  'norm.weight': 'norm.weight',
  'norm.bias': 'norm.bias',
};

const HF_LAYER: [RegExp, string][] = [
  [/^layer\.(\d+)\.norm1\.(weight|bias)$/, 'blocks.$1.norm1.$2'],
  [/^layer\.(\d+)\.norm2\.(weight|bias)$/, 'blocks.$1.norm2.$2'],
  [/^layer\.(\d+)\.attention\.o_proj\.(weight|bias)$/, 'blocks.$1.attn.proj.$2'],
  [/^layer\.(\d+)\.layer_scale1\.lambda1$/, 'blocks.$1.ls1.gamma'],
  [/^layer\.(\d+)\.layer_scale2\.lambda1$/, 'blocks.$1.ls2.gamma'],
  [/^layer\.(\d+)\.mlp\.up_proj\.(weight|bias)$/, 'blocks.$1.mlp.fc1.$2'],
  [/^layer\.(\d+)\.mlp\.down_proj\.(weight|bias)$/, 'blocks.$1.mlp.fc2.$2'],
];

/** Where one tensor of a DINOv3 file goes: a canonical name, a q/k/v part to fuse, consumed implicitly, or unused. */
export type Dinov3Target =
  | { kind: 'canonical'; name: string }
  | { kind: 'qkv'; layer: string; part: 'q' | 'k' | 'v'; param: 'weight' | 'bias' }
  | { kind: 'implied' }
  | null;

export function dinov3Target(format: Dinov3Format, name: string): Dinov3Target {
  if (format === 'dinov3-hub') {
    if (name === 'storage_tokens') return { kind: 'canonical', name: 'reg_token' };
    // The RoPE periods follow from theta; the bias mask is what maskKeyBias does.
    if (name === 'rope_embed.periods' || /^blocks\.\d+\.attn\.qkv\.bias_mask$/.test(name)) return { kind: 'implied' };
    return { kind: 'canonical', name };
  }
  if (HF_FIXED[name]) return { kind: 'canonical', name: HF_FIXED[name] };
  const m = /^layer\.(\d+)\.attention\.(q|k|v)_proj\.(weight|bias)$/.exec(name);
  if (m) return { kind: 'qkv', layer: m[1], part: m[2] as 'q' | 'k' | 'v', param: m[3] as 'weight' | 'bias' };
  for (const [re, to] of HF_LAYER) if (re.test(name)) return { kind: 'canonical', name: name.replace(re, to) };
  return null;
}
