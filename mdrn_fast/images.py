"""Image files in and out: float32 arrays [H, W, C] in [0, 1], 8- or 16-bit PNG written atomically.

Every bad file becomes an ImageError naming the file and the reason (never a PIL traceback).
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

# A size claim past this many pixels is refused before decoding (a "decompression bomb").
MAX_PIXELS = 20000 * 20000


class ImageError(ValueError):
    """A file that is not a readable image, or one this project refuses."""


@dataclass
class LoadedImage:
    pixels: np.ndarray  # float32 [H, W, C] in [0, 1], C = 1 (gray) or 3 (RGB)
    bits: int  # 8 or 16: the depth to write results back with


def load_image(path: str | os.PathLike, channels: int | None = None) -> LoadedImage:
    """Read an image; channels=None keeps gray as 1 and everything else as RGB (3); 1 or 3 converts."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageError(f"{path}: empty file")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise ImageError(f"{path}: {im.width}x{im.height} is larger than the {MAX_PIXELS} pixel limit")
                im.load()
                return _to_array(im, path, channels)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{path}: refused, image too large ({e})") from None
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{path}: not a readable image ({e})") from None


def _to_array(im: Image.Image, path: Path, channels: int | None) -> LoadedImage:
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.float32) / 65535.0
        bits = 16
        a = a[..., None]
    else:
        if im.mode not in ("L", "RGB"):
            # palette, RGBA (alpha dropped), CMYK, 1-bit...: to gray if it has no colour, else RGB
            im = im.convert("L" if im.mode in ("1", "LA", "P") and _is_gray(im) else "RGB")
        a = np.asarray(im, dtype=np.float32) / 255.0
        bits = 8
        if a.ndim == 2:
            a = a[..., None]
    if channels == 3 and a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif channels == 1 and a.shape[2] == 3:
        a = (a @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]  # ITU-R 601 luma, as PIL
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageError(f"{path}: image has no pixels")
    return LoadedImage(np.ascontiguousarray(a), bits)


def _is_gray(im: Image.Image) -> bool:
    rgb = np.asarray(im.convert("RGB"))
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def quantize(pixels: np.ndarray, bits: int = 8) -> np.ndarray:
    """Clip to [0, 1] and round to uint8 or uint16."""
    top = 255 if bits == 8 else 65535
    return np.round(np.clip(pixels, 0.0, 1.0) * top).astype(np.uint8 if bits == 8 else np.uint16)


def save_image(path: str | os.PathLike, pixels: np.ndarray, bits: int = 8) -> Path:
    """Write float [H, W, C] in [0, 1] (or an integer array as is) as PNG, atomically (temp file, then rename)."""
    path = Path(path)
    a = pixels if pixels.dtype in (np.uint8, np.uint16) else quantize(pixels, bits)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.dtype == np.uint16 and a.ndim == 3:  # PIL writes 16-bit PNG for gray only: colour goes to 8 bits
        a = (a >> 8).astype(np.uint8)
    im = Image.fromarray(a)
    tmp = path.with_name(f".{path.name}.tmp")
    im.save(tmp, format="PNG")
    os.replace(tmp, path)
    return path
