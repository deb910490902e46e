#!/usr/bin/python3
"""Writes PyTorch .pth fixtures with torch.save: the tiny ViT parity checkpoints of
scripts/make-vit-fixtures.py (test/fixtures/vit/*.safetensors) re-saved the way the hubs and training
scripts ship them, plus files vitgpu must refuse.

  /usr/bin/python3 scripts/make-pth-fixtures.py          # test/fixtures/pth (committed)

Written (each state dict holds the same tensors as the safetensors file of the same name, so the
expected outputs in test/fixtures/vit/expected.json apply):
  timm-f32.pth                plain state dict (timm's and DINOv2 hub's hub files)
  dinov2-hub-f16.pth          plain, float16
  hf-vit-bf16.pth             plain, bfloat16 (HF pytorch_model.bin naming)
  hf-dinov2-f32-model.pth     {'model': state_dict, 'epoch': 7}
  timm-f32-state_dict.pth     {'state_dict': state_dict, 'epoch': 3, 'metric': 0.5}
  dinov2-hub-f32-teacher.pth  {'teacher': {'backbone.<name>': ..., 'dino_head.*': ...}} (DINOv2 training)
  legacy.pth                  torch.save(..., _use_new_zipfile_serialization=False): refused
  evil-system.pth             a pickle that would call os.system: refused, nothing runs
  evil-eval.pth               a pickle that would call builtins.eval: refused
Needs Debian's python3-torch and python3-numpy.
"""
import json
import os
import struct
from collections import OrderedDict

import numpy as np
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
VIT = os.path.join(ROOT, 'test', 'fixtures', 'vit')
OUT = os.path.join(ROOT, 'test', 'fixtures', 'pth')


def read_safetensors(path):
    """The tensors of a safetensors file, in file order, with their stored dtypes."""
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    header.pop('__metadata__', None)
    out = OrderedDict()
    for name, info in sorted(header.items(), key=lambda kv: kv[1]['data_offsets'][0]):
        b, e = info['data_offsets']
        raw = data[b:e]
        shape = info['shape']
        if info['dtype'] == 'F32':
            t = torch.from_numpy(np.frombuffer(raw, dtype='<f4').copy()).reshape(shape)
        elif info['dtype'] == 'F16':
            t = torch.from_numpy(np.frombuffer(raw, dtype='<f2').copy()).reshape(shape)
        elif info['dtype'] == 'BF16':
            bits = np.frombuffer(raw, dtype='<u2').astype(np.int32) << 16
            t = torch.from_numpy(bits.view(np.float32).copy()).reshape(shape).to(torch.bfloat16)
        else:
            raise ValueError(f'{path}: {name} has dtype {info["dtype"]}')
        out[name] = t
    return out


class System:
    def __reduce__(self):
        return (os.system, ('echo vitgpu-fixture-executed > /tmp/vitgpu-pwned',))


class Eval:
    def __reduce__(self):
        import builtins
        return (builtins.eval, ('__import__("os").getcwd()',))


def main():
    os.makedirs(OUT, exist_ok=True)
    sd = lambda name: read_safetensors(os.path.join(VIT, f'{name}.safetensors'))
    torch.save(sd('timm-f32'), os.path.join(OUT, 'timm-f32.pth'))
    torch.save(sd('dinov2-hub-f16'), os.path.join(OUT, 'dinov2-hub-f16.pth'))
    torch.save(sd('hf-vit-bf16'), os.path.join(OUT, 'hf-vit-bf16.pth'))
    torch.save({'model': sd('hf-dinov2-f32'), 'epoch': 7}, os.path.join(OUT, 'hf-dinov2-f32-model.pth'))
    torch.save({'state_dict': sd('timm-f32'), 'epoch': 3, 'metric': 0.5}, os.path.join(OUT, 'timm-f32-state_dict.pth'))
    teacher = OrderedDict((f'backbone.{k}', v) for k, v in sd('dinov2-hub-f32').items())
    teacher['dino_head.mlp.0.weight'] = torch.randn(8, 32)
    teacher['dino_head.last_layer.weight_g'] = torch.ones(16, 1)
    torch.save({'teacher': teacher}, os.path.join(OUT, 'dinov2-hub-f32-teacher.pth'))
    torch.save(sd('timm-f32'), os.path.join(OUT, 'legacy.pth'), _use_new_zipfile_serialization=False)
    torch.save({'weights': torch.zeros(2), 'x': System()}, os.path.join(OUT, 'evil-system.pth'))
    torch.save({'weights': torch.zeros(2), 'x': Eval()}, os.path.join(OUT, 'evil-eval.pth'))
    print(f'wrote {len(os.listdir(OUT))} files to {OUT}')


if __name__ == '__main__':
    main()
