"""Noisy images as photo files would hold them, for the noise-estimator and model-choice measurements: the
evaluation protocol's noise (mdrn_fast.evaluate.noisy_version, the per-image seed), then clipped and rounded
to 8 bits as a PNG would be, or saved and read back as a JPEG of a given quality (Pillow's encoder, 4:2:0
chroma for color, as cameras and phones save)."""
from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from mdrn_fast.evaluate import image_seed, noisy_version
from mdrn_fast.images import jpeg_quality, quantize


def noisy_file(clean: np.ndarray, name: str, sigma: float, fmt: str = "png", base_seed: int = 0):
    """(float [H, W, C] in [0, 1] as read back from the file, the JPEG quality read from it or None);
    ``fmt``: "png", or "q<quality>" for a JPEG."""
    x = torch.from_numpy(np.ascontiguousarray(clean.transpose(2, 0, 1)))[None]
    y = noisy_version(x, sigma, image_seed(name, sigma, base_seed))[0].numpy().transpose(1, 2, 0)
    return as_file(y, fmt)


def as_file(y: np.ndarray, fmt: str = "png"):
    """A noisy float [H, W, C] image as a ``fmt`` file (see noisy_file) holds it, read back."""
    u8 = quantize(y)
    if fmt == "png":
        return u8.astype(np.float32) / 255, None
    buf = io.BytesIO()
    Image.fromarray(u8[..., 0] if u8.shape[2] == 1 else u8).save(buf, format="JPEG", quality=int(fmt[1:]))
    buf.seek(0)
    with Image.open(buf) as im:
        quality = jpeg_quality(im)
        a = np.asarray(im)
    a = a[..., None] if a.ndim == 2 else a
    return a.astype(np.float32) / 255, quality
