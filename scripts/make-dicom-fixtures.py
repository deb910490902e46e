#!/usr/bin/python3
"""Writes test/fixtures/dicom/: small DICOM radiographs and, for each, the same pixels as a 16-bit PNG,
the reference for datasets/dicom.ts (test/datasets/dicom.test.ts).

  /usr/bin/python3 scripts/make-dicom-fixtures.py

Needs Debian's python3-pydicom and python3-numpy, and for the compressed copies dcmtk (dcmcjpeg,
dcmcjpls, dcmconv) and libgdcm-tools (gdcmconv): pydicom 2.3 cannot encode JPEG lossless, JPEG-LS or
JPEG 2000, so the uncompressed file pydicom writes is compressed losslessly by those tools, and the
script checks (with dcmdjpeg / gdcmconv --raw) that the compressed files hold exactly the same pixels.

The expected pixels come from pydicom's own modality and VOI transforms (apply_modality_lut,
apply_voi_lut), not from vitgpu's code:
  NAME.png         --dicom-window none (the default): modality values (Rescale Slope/Intercept applied)
                   stretched from their min to their max; MONOCHROME1 inverted.
  NAME-window.png  --dicom-window auto: the file's first VOI window, apply_voi_lut scaled to [0, 1];
                   MONOCHROME1 inverted.
Each PNG is 16-bit gray: value = round(v * 65535).
"""
import os
import shutil
import struct
import subprocess
import tempfile
import zlib

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.pixel_data_handlers.util import apply_modality_lut, apply_voi_lut
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'dicom')
H, W = 64, 48


def png16(path, img01):
    """A 16-bit grayscale PNG, written without PIL."""
    q = np.round(np.clip(img01, 0, 1) * 65535).astype('>u2')
    raw = b''.join(b'\x00' + q[y].tobytes() for y in range(q.shape[0]))

    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)

    ihdr = struct.pack('>IIBBBBB', q.shape[1], q.shape[0], 16, 0, 0, 0, 0)
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b''))


def phantom(bits, signed=False):
    """A radiograph-like test image: a gradient, two 'lungs', a 'heart' and noise, in `bits` bits."""
    rng = np.random.default_rng(bits + (100 if signed else 0))
    y, x = np.mgrid[0:H, 0:W]
    img = 0.25 + 0.5 * y / H
    for cx in (W * 0.3, W * 0.7):
        img -= 0.3 * np.exp(-(((x - cx) / (W * 0.14)) ** 2 + ((y - H * 0.45) / (H * 0.25)) ** 2))
    img += 0.25 * np.exp(-(((x - W * 0.55) / (W * 0.12)) ** 2 + ((y - H * 0.65) / (H * 0.12)) ** 2))
    img += rng.normal(0, 0.02, img.shape)
    top = 2 ** bits - 1
    v = np.clip(np.round(img * top), 0, top).astype(np.int64)
    if signed:
        v -= 2 ** (bits - 1)
    return v


def dataset(name, pixels, *, bits_stored, signed=False, photometric='MONOCHROME2', slope=None, intercept=None,
            window=None, voi_function=None, syntax=ExplicitVRLittleEndian, junk_high_bits=False, frames=1):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = '1.2.840.10008.5.1.4.1.1.1.1'  # Digital X-Ray Image Storage - For Presentation
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[name])
    meta.TransferSyntaxUID = syntax
    ds = FileDataset(name, {}, file_meta=meta, preamble=b'\0' * 128)
    ds.is_little_endian = True
    ds.is_implicit_VR = syntax == ImplicitVRLittleEndian
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = 'DX'
    ds.PatientName = 'Phantom^Test'
    ds.PatientID = 'vitgpu-fixture'
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = H, W
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    if slope is not None:
        ds.RescaleSlope = slope
        ds.RescaleIntercept = intercept
        ds.RescaleType = 'US'
    if window is not None:
        ds.WindowCenter = window[0]
        ds.WindowWidth = window[1]
        if voi_function:
            ds.VOILUTFunction = voi_function
    if frames > 1:
        ds.NumberOfFrames = frames
    stored = pixels.astype(np.int64) & (2 ** bits_stored - 1)  # two's complement in bits_stored bits
    if junk_high_bits:
        # Bits above High Bit are not pixel data (old files keep overlays there): a reader must mask them.
        stored = stored | (np.arange(stored.size).reshape(stored.shape) % 3 == 0) * (0xF000 & ~(2 ** bits_stored - 1))
    if signed:
        raw = np.where(stored >= 2 ** (bits_stored - 1), stored - 2 ** bits_stored, stored).astype('<i2')
    else:
        raw = stored.astype('<u2')
    ds.PixelData = np.tile(raw, (frames, 1, 1)).tobytes() if frames > 1 else raw.tobytes()
    return ds


def expected(ds, mode):
    arr = ds.pixel_array.astype(np.int64)
    bits = ds.BitsStored
    arr &= 2 ** bits - 1
    if ds.PixelRepresentation == 1:
        arr = np.where(arr >= 2 ** (bits - 1), arr - 2 ** bits, arr)
    m = apply_modality_lut(arr, ds).astype(np.float64)
    if mode == 'none':
        out = (m - m.min()) / (m.max() - m.min())
    else:
        # apply_voi_lut maps into the range of the stored (or, after a rescale, the output) values.
        y = apply_voi_lut(m, ds, index=0, prefer_lut=False).astype(np.float64)
        # The range apply_windowing maps into: the stored range, through the rescale when there is one.
        lo, hi = (0, 2 ** bits - 1) if ds.PixelRepresentation == 0 else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        if 'RescaleSlope' in ds:
            lo, hi = lo * float(ds.RescaleSlope) + float(ds.RescaleIntercept), hi * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        out = (y - lo) / (hi - lo)
    if ds.PhotometricInterpretation == 'MONOCHROME1':
        out = 1 - out
    return out


def run(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def same_pixels(a, b):
    return np.array_equal(pydicom.dcmread(a).pixel_array, pydicom.dcmread(b).pixel_array)


def main():
    os.makedirs(OUT, exist_ok=True)
    tmp = tempfile.mkdtemp()
    written = []

    def save(name, ds, modes=('none',)):
        path = os.path.join(OUT, f'{name}.dcm')
        ds.save_as(path, write_like_original=False)
        for mode in modes:
            png16(os.path.join(OUT, f'{name}.png' if mode == 'none' else f'{name}-window.png'), expected(pydicom.dcmread(path), mode))
        written.append(name)
        return path

    base = save('mono2-12bit', dataset('mono2-12bit', phantom(12), bits_stored=12, window=(1800, 2400)), ('none', 'auto'))
    save('mono1-12bit', dataset('mono1-12bit', phantom(12), bits_stored=12, photometric='MONOCHROME1',
                                window=(2048, 3000), junk_high_bits=True), ('none', 'auto'))
    save('rescaled-signed', dataset('rescaled-signed', phantom(12, signed=True), bits_stored=12, signed=True, slope=2,
                                    intercept=-1024, window=(-900, 2600), voi_function='LINEAR',
                                    syntax=ImplicitVRLittleEndian), ('none', 'auto'))

    # Lossless compressed copies of mono2-12bit: the same pixels, so the same PNGs.
    variants = {
        'mono2-12bit-jpeg-lossless': ['dcmcjpeg', '--encode-lossless-sv1'],  # 1.2.840.10008.1.2.4.70
        'mono2-12bit-jpegls': ['dcmcjpls', '--encode-lossless'],  # 1.2.840.10008.1.2.4.80
        'mono2-12bit-big-endian': ['dcmconv', '--write-xfer-big'],  # 1.2.840.10008.1.2.2
    }
    for name, cmd in variants.items():
        path = os.path.join(OUT, f'{name}.dcm')
        run(*cmd, base, path)
        assert same_pixels(base, path) if name.endswith('endian') else True
        written.append(name)
    j2k = os.path.join(OUT, 'mono2-12bit-j2k.dcm')
    run('gdcmconv', '--j2k', base, j2k)  # lossless JPEG 2000, 1.2.840.10008.1.2.4.90
    written.append('mono2-12bit-j2k')
    # Decode the compressed files with the tools and compare with the original pixels.
    for name in ('mono2-12bit-jpeg-lossless', 'mono2-12bit-jpegls', 'mono2-12bit-j2k'):
        raw = os.path.join(tmp, f'{name}-raw.dcm')
        run('gdcmconv', '--raw', os.path.join(OUT, f'{name}.dcm'), raw)
        assert same_pixels(base, raw), f'{name} is not lossless'

    # Files vitgpu must refuse: RLE (a transfer syntax it does not decode) and a multi-frame image.
    run('gdcmconv', '--rle', base, os.path.join(OUT, 'unsupported-rle.dcm'))
    multi = dataset('multi-frame', phantom(12), bits_stored=12, frames=2)
    multi.save_as(os.path.join(OUT, 'multi-frame.dcm'), write_like_original=False)
    shutil.rmtree(tmp)
    for name in written + ['unsupported-rle', 'multi-frame']:
        ds = pydicom.dcmread(os.path.join(OUT, f'{name}.dcm'), stop_before_pixels=True)
        print(f'{name}.dcm  {ds.file_meta.TransferSyntaxUID}  {ds.PhotometricInterpretation} {ds.BitsStored}/{ds.BitsAllocated} bits')


if __name__ == '__main__':
    main()
