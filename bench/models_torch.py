"""PyTorch CPU peer of `npm run bench -- --models`: one model case, timed, printed as one JSON line.

Run by bench/models.ts through /usr/bin/python3 (Debian's python3-torch). The ViT here is the same
architecture as models/vit.ts (pre-norm blocks, fused qkv, exact GELU, LayerScale for B/14, a linear
head on the final-norm CLS token), written with plain torch ops because Debian has no timm or
torchvision. Weights are random: speed and memory do not depend on their values.

    python3 bench/models_torch.py '{"arch": "vit-b16", "imageSize": 224, "batch": 8, "train": true,
                                    "reps": 2, "threads": 2, "labels": 14}'

With "stepped": true it takes `call` and `end` commands on stdin instead (bench/stepped.ts).
"""

import json
import math
import os
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ARCHS = {
    "vit-b16": dict(patch=16, width=768, depth=12, heads=12, mlp=3072, layer_scale=False),
    "vit-b14": dict(patch=14, width=768, depth=12, heads=12, mlp=3072, layer_scale=True),
}


class Block(nn.Module):
    def __init__(self, d, heads, mlp, layer_scale):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(d, eps=1e-6)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d, eps=1e-6)
        self.fc1 = nn.Linear(d, mlp)
        self.fc2 = nn.Linear(mlp, d)
        self.ls1 = nn.Parameter(torch.full((d,), 1e-5)) if layer_scale else None
        self.ls2 = nn.Parameter(torch.full((d,), 1e-5)) if layer_scale else None

    def forward(self, x):
        b, n, d = x.shape
        dh = d // self.heads
        qkv = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, dh).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = torch.softmax(q @ k.transpose(-2, -1) * (1.0 / math.sqrt(dh)), dim=-1) @ v
        a = self.proj(a.transpose(1, 2).reshape(b, n, d))
        x = x + (a * self.ls1 if self.ls1 is not None else a)
        h = self.fc2(F.gelu(self.fc1(self.norm2(x))))
        return x + (h * self.ls2 if self.ls2 is not None else h)


class ViT(nn.Module):
    def __init__(self, patch, width, depth, heads, mlp, layer_scale, image_size, labels):
        super().__init__()
        grid = image_size // patch
        self.patch_embed = nn.Conv2d(3, width, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.randn(1, 1, width) * 1e-6)
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + grid * grid, width) * 0.02)
        self.blocks = nn.ModuleList([Block(width, heads, mlp, layer_scale) for _ in range(depth)])
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.head = nn.Linear(width, labels)

    def forward(self, images):
        x = self.patch_embed(images).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x)[:, 0])


def main():
    spec = json.loads(sys.argv[1])
    threads = int(spec["threads"])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    a = dict(ARCHS[spec["arch"]], depth=spec["depth"])
    model = ViT(**a, image_size=spec["imageSize"], labels=spec["labels"])
    b, s = spec["batch"], spec["imageSize"]
    images = torch.randn(b, 3, s, s)
    targets = (torch.rand(b, spec["labels"]) > 0.5).float()
    train = spec["train"]
    if train:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.0)

    def call():
        if train:
            loss = F.binary_cross_entropy_with_logits(model(images), targets)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        else:
            with torch.no_grad():
                model(images)

    def result(times, warmup_ms):
        return {
            "ms": times,
            "warmupMs": warmup_ms,
            "peakRssBytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "loadavg": os.getloadavg()[0],
        }

    def timed():
        t = time.perf_counter()
        call()
        return (time.perf_counter() - t) * 1e3

    if spec.get("stepped"):
        # Driven call by call by bench/stepped.ts, alternating with vitgpu's calls.
        warmup_ms = timed()
        step({"ready": True, "warmupMs": warmup_ms})
        times = []
        for line in sys.stdin:
            cmd = line.strip()
            if cmd == "call":
                times.append(timed())
                step({"ms": times[-1]})
            elif cmd == "end":
                break
        step({"result": result(times, warmup_ms)})
        return

    times = []
    reps = 0 if spec.get("memoryOnly") else spec["reps"]
    for i in range(1 + reps):  # the first call is a warm-up
        times.append(timed())
    print(json.dumps(result(times[1:], times[0])))


STEP_MARKER = "@@model-step "


def step(message):
    """One message of bench/stepped.ts's protocol."""
    print(STEP_MARKER + json.dumps(message), flush=True)


if __name__ == "__main__":
    main()
