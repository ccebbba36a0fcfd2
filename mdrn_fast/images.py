"""Image files in and out: float32 arrays [H, W, C] in [0, 1] plus the alpha channel and the bit depth, so that
what is written back matches what was read: 8 or 16 bits, gray or RGB, alpha kept, camera orientation applied.

Every bad file becomes an ImageError naming the file and the reason (never a PIL traceback). 16-bit PNGs go
through mdrn_fast.png16 (Pillow reads 16-bit colour as 8-bit); every other format through Pillow.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .png16 import PNGError, is_png16, read_png16, write_png16

# A size claim past this many pixels is refused before decoding (a "decompression bomb").
MAX_PIXELS = 20000 * 20000
EXIF_ORIENTATION = 0x0112


class ImageError(ValueError):
    """A file that is not a readable image, or one this project refuses."""


@dataclass
class LoadedImage:
    pixels: np.ndarray  # float32 [H, W, C] in [0, 1], C = 1 (gray) or 3 (RGB), upright
    bits: int  # 8 or 16: the depth to write results back with
    alpha: np.ndarray | None = None  # float32 [H, W] in [0, 1] when the file has transparency

    @property
    def color(self) -> bool:
        return self.pixels.shape[2] == 3


def load_image(path: str | os.PathLike, channels: int | None = None) -> LoadedImage:
    """Read an image upright (EXIF orientation applied); channels=None keeps gray as 1 and everything else as
    RGB (3); 1 or 3 converts."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageError(f"{path}: empty file")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise ImageError(f"{path}: {im.width}x{im.height} is larger than the {MAX_PIXELS} pixel limit")
                orientation = im.getexif().get(EXIF_ORIENTATION, 1)
                if im.format == "PNG" and is_png16(path):
                    return _from_samples(_orient(read_png16(path), orientation), 16, path, channels)
                im = ImageOps.exif_transpose(im)  # loads; the result carries no orientation tag
                return _from_pil(im, path, channels)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{path}: refused, image too large ({e})") from None
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: a folder, not an image file") from None
    except (OSError, SyntaxError, ValueError, PNGError) as e:
        raise ImageError(f"{path}: not a readable image ({e})") from None


# EXIF orientation -> the array operation that makes the image upright (as PIL's ImageOps.exif_transpose)
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    return np.ascontiguousarray(_ORIENT[orientation](a)) if orientation in _ORIENT else a


def _from_pil(im: Image.Image, path: Path, channels: int | None) -> LoadedImage:
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        return _from_samples(np.asarray(im).astype(np.uint16)[..., None], 16, path, channels)
    if im.mode == "F":
        return _from_float(np.asarray(im, dtype=np.float32)[..., None], path, channels)
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    if has_alpha:
        gray = im.mode in ("LA", "PA") and _is_gray(im)
        im = im.convert("LA" if gray else "RGBA")
    elif im.mode not in ("L", "RGB"):
        # palette, 1-bit, CMYK, YCbCr...: to gray if it has no colour, else RGB
        im = im.convert("L" if im.mode in ("1", "P") and _is_gray(im) else "RGB")
    a = np.asarray(im)
    return _from_samples(a[..., None] if a.ndim == 2 else a, 8, path, channels)


def _from_samples(a: np.ndarray, bits: int, path: Path, channels: int | None) -> LoadedImage:
    """uint8/uint16 [H, W, 1-4] (gray, gray + alpha, RGB, RGBA) -> LoadedImage."""
    alpha = None
    if a.shape[2] in (2, 4):
        a, alpha = a[..., :-1], a[..., -1].astype(np.float32) / (2**bits - 1)
    image = _from_float(a.astype(np.float32) / (2**bits - 1), path, channels)
    image.bits, image.alpha = bits, alpha
    return image


def _from_float(a: np.ndarray, path: Path, channels: int | None) -> LoadedImage:
    if channels == 3 and a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif channels == 1 and a.shape[2] == 3:
        a = (a @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]  # ITU-R 601 luma, as PIL
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageError(f"{path}: image has no pixels")
    return LoadedImage(np.ascontiguousarray(a, dtype=np.float32), 8)


def _is_gray(im: Image.Image) -> bool:
    rgb = np.asarray(im.convert("RGB"))
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def quantize(pixels: np.ndarray, bits: int = 8) -> np.ndarray:
    """Clip to [0, 1] and round to uint8 or uint16 (one float temporary: large images stay within memory)."""
    top = 255 if bits == 8 else 65535
    a = np.clip(pixels, 0.0, 1.0, dtype=np.float32)
    a *= top
    np.round(a, out=a)
    return a.astype(np.uint8 if bits == 8 else np.uint16)


def save_image(path: str | os.PathLike, pixels: np.ndarray, bits: int = 8, alpha: np.ndarray | None = None) -> Path:
    """Write float [H, W, C] in [0, 1] (or an integer array as is), plus an optional alpha [H, W], as an 8- or
    16-bit PNG, atomically (temporary file, then rename)."""
    path = Path(path)
    a = pixels if pixels.dtype in (np.uint8, np.uint16) else quantize(pixels, bits)
    if a.ndim == 2:
        a = a[..., None]
    if alpha is not None:
        a = np.concatenate([a, quantize(alpha, 8 if a.dtype == np.uint8 else 16)[..., None]], axis=2)
    tmp = path.with_name(f".{path.name}.tmp")
    if a.dtype == np.uint16:
        write_png16(tmp, a)
    else:
        Image.fromarray(a[..., 0] if a.shape[2] == 1 else a).save(tmp, format="PNG")  # L, LA, RGB or RGBA
    os.replace(tmp, path)
    return path
