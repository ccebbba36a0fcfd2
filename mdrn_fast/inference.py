"""Denoising arrays, PIL images and tensors with a model, whole or tile by tile."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from .models import MDRN
from .tiling import DEFAULT_MEMORY, denoise_tiled, fits_whole


@torch.no_grad()
def denoise_tensor(y: torch.Tensor, model: MDRN, tile: int | None = None, overlap: int | None = None,
                   memory: int = DEFAULT_MEMORY, mode: str = "global", progress: bool = False) -> torch.Tensor:
    """Denoise y [N, C, H, W] (floats on the [0, 1] scale). Whole when it fits ``memory`` bytes of activations
    and no ``tile`` is asked for; else in tiles (mdrn_fast.tiling: core size ``tile``, halo ``overlap``,
    ``mode`` "global" by default, "exact" to match the whole-image result, "local" for one pass)."""
    if tile is None and (not isinstance(model, MDRN) or fits_whole(model, y, memory)):
        return model(y.contiguous())
    return denoise_tiled(model, y, tile, overlap, memory, mode, progress)


def denoise(image, model: MDRN, tile: int | None = None, overlap: int | None = None, memory: int = DEFAULT_MEMORY,
            mode: str = "global", progress: bool = False):
    """Denoise ``image`` (numpy [H, W] / [H, W, C] floats in [0, 1] or uint8/uint16, a PIL image, or a tensor
    [C, H, W] / [N, C, H, W]); returns the same kind (and dtype) it was given. Large images go in tiles within
    ``memory`` bytes (see denoise_tensor)."""
    kw = dict(tile=tile, overlap=overlap, memory=memory, mode=mode, progress=progress)
    param = next(model.parameters())
    if isinstance(image, torch.Tensor):
        x = image if image.dim() == 4 else image[None]
        out = denoise_tensor(x.to(param.device, param.dtype), model, **kw).to(image.dtype)
        return out if image.dim() == 4 else out[0]
    if isinstance(image, Image.Image):
        a = np.asarray(image.convert("L" if model.in_channels == 1 else "RGB"))
        return Image.fromarray(denoise(a, model, **kw))
    a = np.asarray(image)
    top = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(a.dtype)
    f = a.astype(np.float32) / top if top else a.astype(np.float32, copy=False)
    hwc = f[..., None] if f.ndim == 2 else f
    # a channels-last view of the array, not a copy: tiles are copied out one at a time (a large photo's memory)
    hwc = np.require(hwc, requirements=["C_CONTIGUOUS", "WRITEABLE"])  # torch will not wrap a read-only array
    x = torch.from_numpy(hwc).permute(2, 0, 1)[None].to(param.device, param.dtype)
    y = denoise_tensor(x, model, **kw)[0].float().cpu().numpy().transpose(1, 2, 0)
    y = y[..., 0] if f.ndim == 2 else y
    if top:
        return np.round(np.clip(y, 0, 1) * top).astype(a.dtype)
    return y.astype(a.dtype, copy=False)
