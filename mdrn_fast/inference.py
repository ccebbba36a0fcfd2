"""Denoising arrays, PIL images and tensors with a model, whole or tile by tile."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from .models import MDRN


@torch.no_grad()
def denoise_tensor(y: torch.Tensor, model: MDRN, tile: int | None = None, overlap: int = 32) -> torch.Tensor:
    """Denoise y [N, C, H, W] (floats in [0, 1] scale); with ``tile``, in tiles of tile x tile pixels that
    overlap by ``overlap`` and are stitched from their centres.

    Tiling is close to, not identical with, the whole-image result: MDRN's channel attention pools over the
    whole input, which a tile cannot see (the convolutions alone would match exactly away from tile edges).
    """
    if tile is None or (y.shape[-2] <= tile and y.shape[-1] <= tile):
        return model(y)
    if tile % 4 or overlap % 4 or tile <= 2 * overlap:
        raise ValueError(f"tile ({tile}) and overlap ({overlap}) must be multiples of 4 with tile > 2 * overlap")
    _, _, H, W = y.shape
    out = torch.empty_like(y)
    step = tile - 2 * overlap
    for top in range(0, H, step):
        for left in range(0, W, step):
            # the tile, grown by the overlap, aligned to 4 so that the degradation grid matches the whole image's
            t0, l0 = max(0, top - overlap) // 4 * 4, max(0, left - overlap) // 4 * 4
            t1, l1 = min(H, top + step + overlap), min(W, left + step + overlap)
            part = model(y[..., t0:t1, l0:l1])
            b, r = min(H, top + step), min(W, left + step)
            out[..., top:b, left:r] = part[..., top - t0:b - t0, left - l0:r - l0]
    return out


def denoise(image, model: MDRN, tile: int | None = None, overlap: int = 32):
    """Denoise ``image`` (numpy [H, W] / [H, W, C] floats in [0, 1] or uint8/uint16, a PIL image, or a tensor
    [C, H, W] / [N, C, H, W]); returns the same kind (and dtype) it was given."""
    param = next(model.parameters())
    if isinstance(image, torch.Tensor):
        x = image if image.dim() == 4 else image[None]
        out = denoise_tensor(x.to(param.device, param.dtype), model, tile, overlap).to(image.dtype)
        return out if image.dim() == 4 else out[0]
    if isinstance(image, Image.Image):
        a = np.asarray(image.convert("L" if model.in_channels == 1 else "RGB"))
        return Image.fromarray(denoise(a, model, tile, overlap))
    a = np.asarray(image)
    top = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(a.dtype)
    f = a.astype(np.float32) / top if top else a.astype(np.float32)
    hwc = f[..., None] if f.ndim == 2 else f
    x = torch.from_numpy(np.ascontiguousarray(hwc.transpose(2, 0, 1)))[None].to(param.device, param.dtype)
    y = denoise_tensor(x, model, tile, overlap)[0].float().cpu().numpy().transpose(1, 2, 0)
    y = y[..., 0] if f.ndim == 2 else y
    if top:
        return np.round(np.clip(y, 0, 1) * top).astype(a.dtype)
    return y.astype(a.dtype)
