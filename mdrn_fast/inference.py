"""Denoising arrays, PIL images and tensors with a model, whole or tile by tile."""
from __future__ import annotations

import os
import warnings

import numpy as np
import torch
from PIL import Image

from .models import MDRN
from .channel_split import GrayOnChannels
from .images import check_pixels
from .tiling import DEFAULT_MEMORY, denoise_tiled, fits_whole


@torch.no_grad()
def denoise_tensor(y: torch.Tensor, model: MDRN, tile: int | None = None, overlap: int | None = None,
                   memory: int = DEFAULT_MEMORY, mode: str = "global", progress: bool = False) -> torch.Tensor:
    """Denoise y [N, C, H, W] (floats on the [0, 1] scale). Whole when it fits ``memory`` bytes of activations
    and no ``tile`` is asked for; else in tiles (mdrn_fast.tiling: core size ``tile``, halo ``overlap``,
    ``mode`` "global" by default, "exact" to match the whole-image result, "local" for one pass)."""
    if isinstance(model, GrayOnChannels):  # each channel tiled on its own, within the same memory
        return model.apply(y, lambda t: denoise_tensor(t, model.gray, tile, overlap, memory, mode, progress))
    if isinstance(model, _GrayThroughColor):
        three = y.expand(-1, 3, -1, -1).contiguous()
        return denoise_tensor(three, model.color, tile, overlap, memory, mode, progress).mean(dim=1, keepdim=True)
    if tile is None and (not isinstance(model, MDRN) or fits_whole(model, y, memory)):
        return model(y.contiguous())
    return denoise_tiled(model, y, tile, overlap, memory, mode, progress)


def denoise(image, model, tile: int | None = None, overlap: int | None = None, memory: int = DEFAULT_MEMORY,
            mode: str = "global", progress: bool = False):
    """Denoise ``image`` and return the same kind, mode and dtype it was given; large images go in tiles within
    ``memory`` bytes (see denoise_tensor).

    - a PIL image: upright (EXIF orientation applied, as the command line does); L, LA, RGB, RGBA, I;16, I, F,
      CMYK and YCbCr come back in their mode, alpha untouched; 1 comes back L, P and PA come back RGB and RGBA;
    - a NumPy array [H, W] or [H, W, C] (C = 1, 2 gray + alpha, 3, 4 RGB + alpha): uint8 or uint16 (the same
      back), or floats on the [0, 1] scale (a little outside with noise; the same float dtype back); any other
      dtype, or floats on the 0-255 scale, is a ValueError;
    - a path (str or pathlib.Path): read as `mdrn-fast denoise` reads it (mdrn_fast.images.load_image); returns
      what that command would write, as an array: uint8 or uint16 (the file's depth), [H, W] gray or
      [H, W, 3] RGB, alpha as one more channel;
    - a tensor [C, H, W] or [N, C, H, W] of floats in [0, 1].

    A color image with a gray model is denoised channel by channel; a gray image with a color model is given
    to it as three equal channels and averaged back; both say so in a UserWarning."""
    kw = dict(tile=tile, overlap=overlap, memory=memory, mode=mode, progress=progress)
    if isinstance(image, (str, os.PathLike)):
        return _denoise_file(image, model, kw)
    if isinstance(image, torch.Tensor):
        return _denoise_tensor_input(image, model, kw)
    if isinstance(image, Image.Image):
        return _denoise_pil(image, model, kw)
    return _denoise_array(np.asarray(image), model, kw)


def fit_channels(model, channels: int, stacklevel: int = 4):
    """``model`` made to take ``channels`` (1 or 3): a gray model for color on each channel, a color model for
    gray by repetition (wrapped in _GrayThroughColor); said in a warning."""
    from .channel_split import GrayOnChannels
    from .model_choice import COLOR_FALLBACK_SPLIT

    have = getattr(model, "in_channels", channels)
    if have == channels:
        return model
    if isinstance(model, GrayOnChannels) and channels == 1:  # a gray model underneath: it fits as is
        return model.gray
    if have == 1 and channels == 3:
        warnings.warn("a color image with a gray model: denoised channel by channel (a color model, e.g. "
                      "mdrn_fast.pretrained(name, sigma, color=True), uses the colors together)", stacklevel=stacklevel)
        return GrayOnChannels(model, COLOR_FALLBACK_SPLIT)
    if have == 3 and channels == 1:
        warnings.warn("a gray image with a color model: given as three equal channels and averaged back "
                      "(mdrn_fast.pretrained(name, sigma, color=False) is the model for gray images)",
                      stacklevel=stacklevel)
        return _GrayThroughColor(model)
    raise ValueError(f"the model takes {have} channels and the image has {channels}: give a gray (1) or "
                     "color (3 channel) image")


class _GrayThroughColor(torch.nn.Module):
    """A color model taking gray images: three equal channels in, their mean out."""
    in_channels = 1

    def __init__(self, color: torch.nn.Module):
        super().__init__()
        self.color = color

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.color(y.expand(-1, 3, -1, -1).contiguous()).mean(dim=1, keepdim=True)


def _denoise_tensor_input(image: torch.Tensor, model, kw):
    if image.dim() not in (3, 4):
        raise ValueError(f"a tensor image is [C, H, W] or [N, C, H, W], not {list(image.shape)}")
    x = image if image.dim() == 4 else image[None]
    if not x.is_floating_point():
        raise ValueError(f"a tensor image holds floats in [0, 1], not {image.dtype}")
    model = fit_channels(model, x.shape[1])
    param = next(model.parameters())
    out = denoise_tensor(x.to(param.device, param.dtype), model, **kw).to(image.device, image.dtype)
    return out if image.dim() == 4 else out[0]


def _denoise_hwc(f: np.ndarray, model, kw) -> np.ndarray:
    """float32 [H, W, C] in [0, 1] -> denoised float32 [H, W, C]."""
    model = fit_channels(model, f.shape[2], stacklevel=5)
    param = next(model.parameters())
    # a channels-last view of the array, not a copy: tiles are copied out one at a time (a large photo's memory)
    hwc = np.require(f, requirements=["C_CONTIGUOUS", "WRITEABLE"])  # torch will not wrap a read-only array
    x = torch.from_numpy(hwc).permute(2, 0, 1)[None].to(param.device, param.dtype)
    return denoise_tensor(x, model, **kw)[0].float().cpu().numpy().transpose(1, 2, 0)


_TOP = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def _denoise_array(a: np.ndarray, model, kw) -> np.ndarray:
    if a.dtype not in _TOP and a.dtype.kind != "f":
        raise ValueError(f"an image array of {a.dtype}: give uint8, uint16, or floats on the [0, 1] scale "
                         "(e.g. a.astype(np.float32) / 255 for 8-bit values)")
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 2, 3, 4)) or 0 in a.shape:
        raise ValueError(f"an image array is [H, W] or [H, W, C] with C = 1, 2 (gray + alpha), 3 or 4 (RGB + "
                         f"alpha), not {list(a.shape)}")
    if a.dtype.kind == "f":
        check_pixels(a, "image array")
    top = _TOP.get(a.dtype)
    hwc = a[..., None] if a.ndim == 2 else a
    alpha = hwc[..., -1:] if hwc.shape[2] in (2, 4) else None
    pixels = hwc[..., :-1] if alpha is not None else hwc
    f = pixels.astype(np.float32) / top if top else pixels.astype(np.float32, copy=False)
    y = _denoise_hwc(f, model, kw)
    y = np.round(np.clip(y, 0, 1) * top).astype(a.dtype) if top else y.astype(a.dtype, copy=False)
    if alpha is not None:
        y = np.concatenate([y, alpha], axis=2)
    return y[..., 0] if a.ndim == 2 else y


# PIL modes with no image array of their own: denoised as (mode in, mode out)
_PIL_VIA = {"1": ("L", "L"), "P": ("RGB", "RGB"), "PA": ("RGBA", "RGBA"), "CMYK": ("RGB", "CMYK"),
            "YCbCr": ("RGB", "YCbCr"), "LAB": ("RGB", "LAB"), "HSV": ("RGB", "HSV"), "La": ("LA", "LA"),
            "RGBa": ("RGBA", "RGBA"), "RGBX": ("RGB", "RGBX")}


def _denoise_pil(image: Image.Image, model, kw) -> Image.Image:
    from PIL import ImageOps

    im = ImageOps.exif_transpose(image)  # upright, as the command line reads photos
    if im.mode == "P" and "transparency" in im.info:
        via, back = "RGBA", "RGBA"
    else:
        via, back = _PIL_VIA.get(im.mode, (im.mode, im.mode))
    if via != im.mode:
        im = im.convert(via)
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        a = np.asarray(im).astype(np.uint16)
        return Image.fromarray(_denoise_array(a, model, kw))  # uint16 [H, W] -> I;16
    if im.mode == "I":  # 32-bit integers: read as 16-bit values, as the command line does
        a = np.asarray(im)
        check_pixels(a, "image")
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise ValueError("a mode I image with values outside 0-65535; at most 16 bits are read")
        return Image.fromarray(_denoise_array(a.astype(np.uint16), model, kw).astype(np.int32))
    if im.mode == "F":
        return Image.fromarray(_denoise_array(np.asarray(im, dtype=np.float32), model, kw))
    if im.mode not in ("L", "LA", "RGB", "RGBA"):
        raise ValueError(f"a PIL image of mode {im.mode}: convert it to L or RGB first")
    out = Image.fromarray(_denoise_array(np.asarray(im), model, kw))  # uint8 [H, W, C]: L, LA, RGB or RGBA
    return out.convert(back) if back != im.mode else out


def _denoise_file(path, model, kw) -> np.ndarray:
    from .images import load_image, quantize

    image = load_image(path)
    y = quantize(_denoise_hwc(image.pixels, model, kw), image.bits)
    if image.alpha is not None:
        y = np.concatenate([y, quantize(image.alpha, image.bits)[..., None]], axis=2)
    return y[..., 0] if y.shape[2] == 1 else y
