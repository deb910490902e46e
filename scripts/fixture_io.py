"""Writers shared by the fixture scripts: safetensors by hand (8-byte LE header length, JSON header, raw
LE data) and an 8-bit RGB PNG, so fixtures need only Debian's python3-torch and python3-numpy."""
import json
import struct
import zlib

import torch


def write_safetensors(path, tensors, dtype, metadata=None):
    """tensors: name -> torch tensor, all written as `dtype` ('F32', 'F16' or 'BF16')."""
    header, chunks, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.contiguous()
        if dtype == 'F32':
            raw = t.float().numpy().astype('<f4').tobytes()
        elif dtype == 'F16':
            raw = t.half().numpy().astype('<f2').tobytes()
        else:
            raw = t.bfloat16().view(torch.int16).numpy().astype('<i2').tobytes()
        header[name] = {'dtype': dtype, 'shape': list(t.shape), 'data_offsets': [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header['__metadata__'] = metadata
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for c in chunks:
            f.write(c)


def write_png_rgb8(path, img):
    """img: [3, H, W] floats that are multiples of 1/255; writes an 8-bit RGB PNG by hand."""
    _, h, w = img.shape
    px = (img * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    raw = b''.join(b'\x00' + px[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)

    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n')
        f.write(chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)))
        f.write(chunk(b'IDAT', zlib.compress(raw, 9)))
        f.write(chunk(b'IEND', b''))
