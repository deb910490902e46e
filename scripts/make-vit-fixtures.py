#!/usr/bin/python3
"""Writes the ViT parity fixtures: tiny random-weight checkpoints in the four namings (timm, DINOv2 hub,
HF ViTModel, HF Dinov2Model) and three dtypes, one image, and what PyTorch computes from them (final-norm
CLS embedding, head logits, gradients of a fixed loss). The forward below is written independently of
vitgpu, from timm's and DINOv2's module definitions.

  /usr/bin/python3 scripts/make-vit-fixtures.py                 # test/fixtures/vit (committed)
  /usr/bin/python3 scripts/make-vit-fixtures.py --full DIR      # also full-size ViT-B/16 and B/14 files
                                                                 # with expected outputs, for slow checks
Needs Debian's python3-torch and python3-numpy; the safetensors files are written by hand (format:
8-byte LE header length, JSON header, raw LE data).
"""
import argparse
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

from fixture_io import write_png_rgb8, write_safetensors

torch.manual_seed(0)


def canonical_shapes(c):
    d, m = c['width'], c['mlp']
    s = {
        'cls_token': [1, 1, d],
        'pos_embed': [1, c['pos_grid'] ** 2 + 1, d],
        'patch_embed.proj.weight': [d, 3, c['patch'], c['patch']],
        'patch_embed.proj.bias': [d],
    }
    for l in range(c['depth']):
        b = f'blocks.{l}'
        s.update({
            f'{b}.norm1.weight': [d], f'{b}.norm1.bias': [d],
            f'{b}.attn.qkv.weight': [3 * d, d], f'{b}.attn.qkv.bias': [3 * d],
            f'{b}.attn.proj.weight': [d, d], f'{b}.attn.proj.bias': [d],
            f'{b}.norm2.weight': [d], f'{b}.norm2.bias': [d],
            f'{b}.mlp.fc1.weight': [m, d], f'{b}.mlp.fc1.bias': [m],
            f'{b}.mlp.fc2.weight': [d, m], f'{b}.mlp.fc2.bias': [d],
        })
        if c['layer_scale']:
            s[f'{b}.ls1.gamma'] = [d]
            s[f'{b}.ls2.gamma'] = [d]
    s['norm.weight'] = [d]
    s['norm.bias'] = [d]
    if c['labels']:
        s['head.weight'] = [c['labels'], d]
        s['head.bias'] = [c['labels']]
    return s


def random_params(c):
    p = {}
    for name, shape in canonical_shapes(c).items():
        if name.endswith('norm1.weight') or name.endswith('norm2.weight') or name == 'norm.weight':
            t = 1 + 0.1 * torch.randn(shape)
        elif name.endswith('.gamma'):
            t = 0.5 + 0.2 * torch.randn(shape)
        elif name.endswith('.bias'):
            t = 0.05 * torch.randn(shape)
        else:
            fan_in = shape[-1] if len(shape) == 2 else int(np.prod(shape[1:]))
            t = torch.randn(shape) * (0.5 if name in ('cls_token', 'pos_embed') else 1 / np.sqrt(fan_in))
        p[name] = t.float()
    return p


def resize_pos(pos, grid_h, grid_w, mode):
    cls, patch = pos[:, :1], pos[:, 1:]
    m = int(round((patch.shape[1]) ** 0.5))
    if m == grid_h and m == grid_w:
        return pos
    d = pos.shape[-1]
    patch = patch.reshape(1, m, m, d).permute(0, 3, 1, 2)
    if mode == 'dinov2-hub':
        # dinov2/models/vision_transformer.py: interpolate_pos_encoding with the +0.1 offset
        patch = F.interpolate(patch, scale_factor=((grid_h + 0.1) / m, (grid_w + 0.1) / m), mode='bicubic', align_corners=False)
    else:
        patch = F.interpolate(patch, size=(grid_h, grid_w), mode='bicubic', align_corners=False)
    patch = patch.permute(0, 2, 3, 1).reshape(1, -1, d)
    return torch.cat([cls, patch], dim=1)


def vit_forward(p, c, img):
    """timm VisionTransformer / DINOv2 DinoVisionTransformer forward (pre-norm blocks, exact GELU)."""
    P, d, h = c['patch'], c['width'], c['heads']
    x = F.conv2d(img, p['patch_embed.proj.weight'], p['patch_embed.proj.bias'], stride=P)
    gh, gw = x.shape[2], x.shape[3]
    x = x.flatten(2).transpose(1, 2)
    b = x.shape[0]
    x = torch.cat([p['cls_token'].expand(b, -1, -1), x], dim=1)
    x = x + resize_pos(p['pos_embed'], gh, gw, c['pos_resize'])
    n = x.shape[1]
    for l in range(c['depth']):
        k = f'blocks.{l}'
        y = F.layer_norm(x, (d,), p[f'{k}.norm1.weight'], p[f'{k}.norm1.bias'], c['eps'])
        qkv = F.linear(y, p[f'{k}.attn.qkv.weight'], p[f'{k}.attn.qkv.bias']).reshape(b, n, 3, h, d // h).permute(2, 0, 3, 1, 4)
        q, kk, v = qkv.unbind(0)
        a = torch.softmax(q @ kk.transpose(-2, -1) * (d // h) ** -0.5, dim=-1) @ v
        y = F.linear(a.transpose(1, 2).reshape(b, n, d), p[f'{k}.attn.proj.weight'], p[f'{k}.attn.proj.bias'])
        if c['layer_scale']:
            y = y * p[f'{k}.ls1.gamma']
        x = x + y
        y = F.layer_norm(x, (d,), p[f'{k}.norm2.weight'], p[f'{k}.norm2.bias'], c['eps'])
        y = F.linear(F.gelu(F.linear(y, p[f'{k}.mlp.fc1.weight'], p[f'{k}.mlp.fc1.bias'])), p[f'{k}.mlp.fc2.weight'], p[f'{k}.mlp.fc2.bias'])
        if c['layer_scale']:
            y = y * p[f'{k}.ls2.gamma']
        x = x + y
    x = F.layer_norm(x, (d,), p['norm.weight'], p['norm.bias'], c['eps'])
    emb = x[:, 0]
    logits = F.linear(emb, p['head.weight'], p['head.bias']) if c['labels'] else None
    return emb, logits


def to_format(p, c, fmt):
    """Canonical (timm) names -> the checkpoint's own naming, with its extras."""
    out = {}
    if fmt in ('timm', 'dinov2-hub'):
        out.update(p)
        if fmt == 'dinov2-hub':
            out['mask_token'] = torch.zeros(1, c['width'])
        return out
    hf_dino = fmt == 'hf-dinov2'
    for name, t in p.items():
        if name.startswith('blocks.'):
            _, l, rest = name.split('.', 2)
            e = f'encoder.layer.{l}.'
            if rest.startswith('attn.qkv.'):
                kind = rest.split('.')[-1]
                for part, chunk in zip(('query', 'key', 'value'), t.chunk(3, dim=0)):
                    out[f'{e}attention.attention.{part}.{kind}'] = chunk.clone()
                continue
            rename = {
                'norm1': 'norm1' if hf_dino else 'layernorm_before',
                'norm2': 'norm2' if hf_dino else 'layernorm_after',
                'attn.proj': 'attention.output.dense',
                'mlp.fc1': 'mlp.fc1' if hf_dino else 'intermediate.dense',
                'mlp.fc2': 'mlp.fc2' if hf_dino else 'output.dense',
                'ls1.gamma': 'layer_scale1.lambda1',
                'ls2.gamma': 'layer_scale2.lambda1',
            }
            for k, v in rename.items():
                if rest.startswith(k):
                    out[e + v + rest[len(k):]] = t
                    break
            else:
                raise KeyError(name)
        else:
            out[{
                'cls_token': 'embeddings.cls_token', 'pos_embed': 'embeddings.position_embeddings',
                'patch_embed.proj.weight': 'embeddings.patch_embeddings.projection.weight',
                'patch_embed.proj.bias': 'embeddings.patch_embeddings.projection.bias',
                'norm.weight': 'layernorm.weight', 'norm.bias': 'layernorm.bias',
                'head.weight': 'classifier.weight', 'head.bias': 'classifier.bias',
            }[name]] = t
    if hf_dino:
        out['embeddings.mask_token'] = torch.zeros(1, c['width'])
        # HF's Dinov2ForImageClassification head reads [CLS, mean(patches)]: another width, skipped by vitgpu.
        out['classifier.weight'] = torch.randn(3, 2 * c['width']) * 0.1
        out['classifier.bias'] = torch.zeros(3)
        return {'dinov2.' + k if not k.startswith('classifier.') else k: v for k, v in out.items()}
    out['pooler.dense.weight'] = torch.randn(c['width'], c['width']) * 0.1
    out['pooler.dense.bias'] = torch.zeros(c['width'])
    if c['labels']:
        return {'vit.' + k if not k.startswith('classifier.') else k: v for k, v in out.items()}
    return out


def round_dtype(t, dtype):
    if dtype == 'F16':
        return t.half().float()
    if dtype == 'BF16':
        return t.bfloat16().float()
    return t




TINY = dict(patch=8, image=32, width=32, depth=2, heads=2, mlp=64)
CONFIGS = {
    'timm': dict(TINY, layer_scale=False, eps=1e-6, labels=5, pos_grid=4, pos_resize='size'),
    'dinov2-hub': dict(TINY, layer_scale=True, eps=1e-6, labels=0, pos_grid=6, pos_resize='dinov2-hub'),
    'hf-vit': dict(TINY, layer_scale=False, eps=1e-12, labels=4, pos_grid=4, pos_resize='size'),
    'hf-dinov2': dict(TINY, layer_scale=True, eps=1e-6, labels=0, pos_grid=6, pos_resize='size'),
}
GRAD_PARAMS = ['pos_embed', 'blocks.0.attn.qkv.weight', 'blocks.1.mlp.fc2.weight']


def rounded(values):
    return [float(f'{v:.8g}') for v in values]


def expected(p, c, img, r, with_grads=True):
    params = {k: v.clone().requires_grad_(k in GRAD_PARAMS) for k, v in p.items()}
    x = img.clone().requires_grad_(True)
    emb, logits = vit_forward(params, c, x)
    loss = (emb * r).sum()
    loss.backward()
    out = {
        'embedding': rounded(emb.detach().flatten().tolist()),
        'logits': rounded(logits.detach().flatten().tolist()) if logits is not None else None,
    }
    if with_grads:
        out['grads'] = {k: rounded(params[k].grad.flatten().tolist()) for k in GRAD_PARAMS}
        out['grads']['image'] = rounded(x.grad.flatten().tolist())
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', default=os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'vit'))
    ap.add_argument('--full', help='also write full-size ViT-B/16 (timm) and ViT-B/14 (DINOv2 hub) checkpoints here')
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    # 8-bit pixel values, so the PNG written below decodes to exactly this tensor (pixels / 255).
    img = torch.randint(0, 256, (1, 3, TINY['image'], TINY['image'])).float() / 255
    write_png_rgb8(os.path.join(args.out, 'image.png'), img[0])
    r = torch.randn(TINY['width'])
    result = {'image': img.flatten().tolist(), 'image_shape': list(img.shape), 'loss_weights': r.tolist(), 'grad_params': GRAD_PARAMS, 'cases': {}}
    for fmt, c in CONFIGS.items():
        base = random_params(c)
        for dtype in ('F32', 'F16', 'BF16'):
            p = {k: round_dtype(v, dtype) for k, v in base.items()}
            name = f'{fmt}-{dtype.lower()}.safetensors'
            write_safetensors(os.path.join(args.out, name), to_format(p, c, fmt), dtype)
            result['cases'][name] = dict(format=fmt, dtype=dtype, config=c, **expected(p, c, img, r, with_grads=dtype == 'F32'))
    with open(os.path.join(args.out, 'expected.json'), 'w') as f:
        json.dump(result, f, separators=(',', ':'))
    print(f'wrote {len(result["cases"])} checkpoints to {args.out}')

    if args.full:
        os.makedirs(args.full, exist_ok=True)
        full = {}
        img224 = torch.rand(1, 3, 224, 224)
        rf = torch.randn(768)
        vit_b = dict(patch=16, image=224, width=768, depth=12, heads=12, mlp=3072)
        for fmt, c in {
            'timm': dict(vit_b, layer_scale=False, eps=1e-6, labels=0, pos_grid=14, pos_resize='size'),
            'dinov2-hub': dict(vit_b, patch=14, layer_scale=True, eps=1e-6, labels=0, pos_grid=37, pos_resize='dinov2-hub'),
        }.items():
            p = random_params(c)
            name = f'vit-b-{fmt}.safetensors'
            write_safetensors(os.path.join(args.full, name), to_format(p, c, fmt), 'F32')
            with torch.no_grad():
                emb, _ = vit_forward(p, c, img224)
            full[name] = dict(format=fmt, config=c, embedding=emb.flatten().tolist())
            print('wrote', name)
        with open(os.path.join(args.full, 'expected.json'), 'w') as f:
            json.dump({'image': img224.flatten().tolist(), 'image_shape': [1, 3, 224, 224], 'cases': full}, f)


if __name__ == '__main__':
    main()
