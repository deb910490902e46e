#!/usr/bin/python3
"""Writes the DINOv3 parity fixtures: tiny random-weight DINOv3 ViTs in the two namings users download
(Hugging Face `DINOv3ViTModel`, facebook/dinov3-vitb16-pretrain-lvd1689m; and the original torch-hub
state dict of facebookresearch/dinov3) in three dtypes, one image at two sizes (two patch grids, so the
2-D RoPE is checked off its training grid), and what PyTorch computes from them (final-norm CLS
embedding, gradients of a fixed loss). The forward below is written from the Hugging Face module
definitions (modeling_dinov3_vit.py): CLS, 4 register tokens and the patches; 2-D rotary embeddings on
the patch tokens' queries and keys only (no learned positions); LayerScale; no key bias (the original
code masks it); LayerNorm eps 1e-5.

  /usr/bin/python3 scripts/make-dinov3-fixtures.py              # test/fixtures/dinov3 (committed)
  /usr/bin/python3 scripts/make-dinov3-fixtures.py --full DIR   # also full-size ViT-B/16 at 224 and 512 px
Needs Debian's python3-torch and python3-numpy.
"""
import argparse
import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

from fixture_io import write_png_rgb8, write_safetensors

torch.manual_seed(3)


def canonical_shapes(c):
    d, m, r = c['width'], c['mlp'], c['registers']
    s = {
        'cls_token': [1, 1, d],
        'reg_token': [1, r, d],
        'patch_embed.proj.weight': [d, 3, c['patch'], c['patch']],
        'patch_embed.proj.bias': [d],
    }
    for l in range(c['depth']):
        b = f'blocks.{l}'
        s.update({
            f'{b}.norm1.weight': [d], f'{b}.norm1.bias': [d],
            f'{b}.attn.q.weight': [d, d], f'{b}.attn.q.bias': [d],
            f'{b}.attn.k.weight': [d, d],
            f'{b}.attn.v.weight': [d, d], f'{b}.attn.v.bias': [d],
            f'{b}.attn.proj.weight': [d, d], f'{b}.attn.proj.bias': [d],
            f'{b}.ls1.gamma': [d],
            f'{b}.norm2.weight': [d], f'{b}.norm2.bias': [d],
            f'{b}.mlp.fc1.weight': [m, d], f'{b}.mlp.fc1.bias': [m],
            f'{b}.mlp.fc2.weight': [d, m], f'{b}.mlp.fc2.bias': [d],
            f'{b}.ls2.gamma': [d],
        })
    s['norm.weight'] = [d]
    s['norm.bias'] = [d]
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
        elif name in ('cls_token', 'reg_token'):
            t = 0.5 * torch.randn(shape)
        else:
            fan_in = shape[-1] if len(shape) == 2 else int(np.prod(shape[1:]))
            t = torch.randn(shape) / np.sqrt(fan_in)
        p[name] = t.float()
    return p


def rope_tables(gh, gw, head_dim, theta):
    """DINOv3ViTRopePositionEmbedding: patch centres in [-1, 1], head_dim/4 frequencies per axis."""
    inv_freq = 1 / theta ** torch.arange(0, 1, 4 / head_dim, dtype=torch.float32)
    ch = torch.arange(0.5, gh, dtype=torch.float32) / gh
    cw = torch.arange(0.5, gw, dtype=torch.float32) / gw
    coords = torch.stack(torch.meshgrid(ch, cw, indexing='ij'), dim=-1).flatten(0, 1)
    coords = 2.0 * coords - 1.0
    angles = 2 * math.pi * coords[:, :, None] * inv_freq[None, None, :]
    angles = angles.flatten(1, 2).tile(2)
    return torch.cos(angles), torch.sin(angles)


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def dinov3_forward(p, c, img):
    P, d, h, r = c['patch'], c['width'], c['heads'], c['registers']
    dh = d // h
    x = F.conv2d(img, p['patch_embed.proj.weight'], p['patch_embed.proj.bias'], stride=P)
    gh, gw = x.shape[2], x.shape[3]
    x = x.flatten(2).transpose(1, 2)
    b = x.shape[0]
    x = torch.cat([p['cls_token'].expand(b, -1, -1), p['reg_token'].expand(b, -1, -1), x], dim=1)
    n = x.shape[1]
    cos, sin = rope_tables(gh, gw, dh, c['rope_theta'])
    prefix = 1 + r
    for l in range(c['depth']):
        k = f'blocks.{l}'
        y = F.layer_norm(x, (d,), p[f'{k}.norm1.weight'], p[f'{k}.norm1.bias'], c['eps'])
        heads = lambda t: t.view(b, n, h, dh).transpose(1, 2)
        q = heads(F.linear(y, p[f'{k}.attn.q.weight'], p[f'{k}.attn.q.bias']))
        kk = heads(F.linear(y, p[f'{k}.attn.k.weight']))
        v = heads(F.linear(y, p[f'{k}.attn.v.weight'], p[f'{k}.attn.v.bias']))
        qp, kp = q[:, :, prefix:], kk[:, :, prefix:]
        q = torch.cat([q[:, :, :prefix], qp * cos + rotate_half(qp) * sin], dim=2)
        kk = torch.cat([kk[:, :, :prefix], kp * cos + rotate_half(kp) * sin], dim=2)
        a = torch.softmax(q @ kk.transpose(-2, -1) * dh ** -0.5, dim=-1) @ v
        y = F.linear(a.transpose(1, 2).reshape(b, n, d), p[f'{k}.attn.proj.weight'], p[f'{k}.attn.proj.bias'])
        x = x + y * p[f'{k}.ls1.gamma']
        y = F.layer_norm(x, (d,), p[f'{k}.norm2.weight'], p[f'{k}.norm2.bias'], c['eps'])
        y = F.linear(F.gelu(F.linear(y, p[f'{k}.mlp.fc1.weight'], p[f'{k}.mlp.fc1.bias'])), p[f'{k}.mlp.fc2.weight'], p[f'{k}.mlp.fc2.bias'])
        x = x + y * p[f'{k}.ls2.gamma']
    x = F.layer_norm(x, (d,), p['norm.weight'], p['norm.bias'], c['eps'])
    return x[:, 0]


def to_format(p, c, fmt):
    out = {}
    d = c['width']
    if fmt == 'dinov3-hub':
        # facebookresearch/dinov3: fused qkv with a key bias that the bias_mask zeroes (stored non-zero
        # here on purpose: a loader that ignores the mask gets other numbers), storage tokens, RoPE periods.
        for name, t in p.items():
            m = name.split('.')
            if name.startswith('blocks.') and m[2] == 'attn' and m[3] in ('q', 'k', 'v'):
                continue
            out[{'reg_token': 'storage_tokens'}.get(name, name)] = t
        for l in range(c['depth']):
            b = f'blocks.{l}.attn'
            out[f'{b}.qkv.weight'] = torch.cat([p[f'{b}.q.weight'], p[f'{b}.k.weight'], p[f'{b}.v.weight']])
            out[f'{b}.qkv.bias'] = torch.cat([p[f'{b}.q.bias'], 0.3 * torch.randn(d), p[f'{b}.v.bias']])
            out[f'{b}.qkv.bias_mask'] = torch.cat([torch.ones(d), torch.zeros(d), torch.ones(d)])
        out['mask_token'] = torch.zeros(1, d)
        dh = d // c['heads']
        out['rope_embed.periods'] = c['rope_theta'] ** (2 * torch.arange(dh // 4, dtype=torch.float32) / (dh // 2))
        return out
    # Hugging Face DINOv3ViTModel
    for name, t in p.items():
        if name.startswith('blocks.'):
            _, l, rest = name.split('.', 2)
            e = f'layer.{l}.'
            rename = {
                'norm1': 'norm1', 'norm2': 'norm2', 'attn.q': 'attention.q_proj', 'attn.k': 'attention.k_proj',
                'attn.v': 'attention.v_proj', 'attn.proj': 'attention.o_proj', 'mlp.fc1': 'mlp.up_proj',
                'mlp.fc2': 'mlp.down_proj', 'ls1.gamma': 'layer_scale1.lambda1', 'ls2.gamma': 'layer_scale2.lambda1',
            }
            for k, v in rename.items():
                if rest.startswith(k + '.') or rest == k:
                    out[e + v + rest[len(k):]] = t
                    break
            else:
                raise KeyError(name)
        else:
            out[{
                'cls_token': 'embeddings.cls_token', 'reg_token': 'embeddings.register_tokens',
                'patch_embed.proj.weight': 'embeddings.patch_embeddings.weight',
                'patch_embed.proj.bias': 'embeddings.patch_embeddings.bias',
                'norm.weight': 'norm.weight', 'norm.bias': 'norm.bias',
            }[name]] = t
    out['embeddings.mask_token'] = torch.zeros(1, 1, d)
    return out


def round_dtype(t, dtype):
    if dtype == 'F16':
        return t.half().float()
    if dtype == 'BF16':
        return t.bfloat16().float()
    return t




TINY = dict(patch=8, width=32, depth=2, heads=2, mlp=64, registers=4, eps=1e-5, rope_theta=100.0)
GRAD_PARAMS = ['cls_token', 'reg_token', 'blocks.0.attn.q.weight', 'blocks.1.mlp.fc2.weight']
SIZES = (32, 48)


def rounded(values):
    return [float(f'{v:.8g}') for v in values]


def expected(p, c, img, r, with_grads):
    params = {k: v.clone().requires_grad_(k in GRAD_PARAMS) for k, v in p.items()}
    x = img.clone().requires_grad_(True)
    emb = dinov3_forward(params, c, x)
    (emb * r).sum().backward()
    out = {'embedding': rounded(emb.detach().flatten().tolist())}
    if with_grads:
        out['grads'] = {k: rounded(params[k].grad.flatten().tolist()) for k in GRAD_PARAMS}
        out['grads']['image'] = rounded(x.grad.flatten().tolist())
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', default=os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'dinov3'))
    ap.add_argument('--full', help='also write a full-size DINOv3 ViT-B/16 (both namings) with embeddings at 224 and 512 px')
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    r = torch.randn(TINY['width'])
    result = {'loss_weights': r.tolist(), 'grad_params': GRAD_PARAMS, 'images': {}, 'cases': {}}
    imgs = {}
    for s in SIZES:
        imgs[s] = torch.randint(0, 256, (1, 3, s, s)).float() / 255
        write_png_rgb8(os.path.join(args.out, f'image{s}.png'), imgs[s][0])
        result['images'][str(s)] = {'shape': list(imgs[s].shape), 'data': imgs[s].flatten().tolist()}
    base = random_params(TINY)
    for dtype in ('F32', 'F16', 'BF16'):
        p = {k: round_dtype(v, dtype) for k, v in base.items()}
        for fmt in ('hf-dinov3', 'dinov3-hub'):
            name = f'{fmt}-{dtype.lower()}.safetensors'
            write_safetensors(os.path.join(args.out, name), to_format(p, TINY, fmt), dtype)
            result['cases'][name] = dict(format=fmt, dtype=dtype, config=TINY, sizes={
                str(s): expected(p, TINY, imgs[s], r, with_grads=dtype == 'F32') for s in SIZES
            })
    with open(os.path.join(args.out, 'expected.json'), 'w') as f:
        json.dump(result, f, separators=(',', ':'))
    print(f'wrote {len(result["cases"])} checkpoints to {args.out}')

    if args.full:
        os.makedirs(args.full, exist_ok=True)
        c = dict(patch=16, width=768, depth=12, heads=12, mlp=3072, registers=4, eps=1e-5, rope_theta=100.0)
        p = random_params(c)
        full = {'cases': {}, 'images': {}}
        for s in (224, 512):
            img = torch.rand(1, 3, s, s)
            full['images'][str(s)] = {'shape': [1, 3, s, s], 'data': img.flatten().tolist()}
            with torch.no_grad():
                full.setdefault('embeddings', {})[str(s)] = dinov3_forward(p, c, img).flatten().tolist()
        for fmt in ('hf-dinov3', 'dinov3-hub'):
            name = f'vit-b16-{fmt}.safetensors'
            write_safetensors(os.path.join(args.full, name), to_format(p, c, fmt), 'F32')
            full['cases'][name] = dict(format=fmt, config=c)
            print('wrote', name)
        with open(os.path.join(args.full, 'expected.json'), 'w') as f:
            json.dump(full, f)


if __name__ == '__main__':
    main()
