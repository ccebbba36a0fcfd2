"""Image files in and out: float32 arrays [H, W, C] in [0, 1] plus the alpha channel and the bit depth, so that
what is written back matches what was read: 8 or 16 bits, gray or RGB, alpha kept, camera orientation applied.

Every bad file becomes an ImageError naming the file and the reason (never a PIL traceback). 16-bit PNGs go
through mdrn_fast.png16 (Pillow reads 16-bit colour as 8-bit); every other format through Pillow.
"""
from __future__ import annotations

import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .atomic import write_atomically
from .png16 import PNGError, is_png16, read_png16, write_png16

# The largest image read (README: 400 megapixels): tiling bounds the network's activations at any size, and the
# image itself takes about 17 bytes a pixel gray, 50 color, while it is denoised (counted from its copies, not
# measured). A header claiming more is refused before anything is decoded (a "decompression bomb"); Pillow's own
# limit (89 MP) is raised to it.
MAX_PIXELS = 400_000_000
if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < MAX_PIXELS:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
EXIF_ORIENTATION = 0x0112
# float images are on the [0, 1] scale; noise can take a pixel a little outside it, but not past these (a float
# image on the 0-255 scale is refused, not turned white)
FLOAT_RANGE = (-1.0, 2.0)


class ImageError(ValueError):
    """A file that is not a readable image, or one this project refuses."""


@dataclass
class LoadedImage:
    pixels: np.ndarray  # float32 [H, W, C] in [0, 1], C = 1 (gray) or 3 (RGB), upright
    bits: int  # 8 or 16: the depth to write results back with
    alpha: np.ndarray | None = None  # float32 [H, W] in [0, 1] when the file has transparency
    jpeg_quality: int | None = None  # the quality a JPEG was saved with (its noise estimate needs it)

    @property
    def color(self) -> bool:
        return self.pixels.shape[2] == 3


def load_image(path: str | os.PathLike, channels: int | None = None) -> LoadedImage:
    """Read an image upright (EXIF orientation applied); channels=None keeps gray as 1 and everything else as
    RGB (3); 1 or 3 converts."""
    path = Path(path)
    try:
        check_regular_file(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size is checked just below
            with Image.open(path) as im:
                check_size(path, im.width, im.height)
                if getattr(im, "is_animated", False):
                    raise ImageError(f"{path}: has {im.n_frames} frames (an animation or a multi-page file); "
                                     "only still images are read: save the frame you want as its own file")
                bits = max(getattr(im, "tag_v2", {}).get(258, (0,)) or (0,))  # a TIFF's bits per sample
                if im.mode == "I" and bits > 16:
                    raise ImageError(f"{path}: a {bits}-bit integer image; at most 16 bits are read (save it as "
                                     "16-bit)")
                orientation = im.getexif().get(EXIF_ORIENTATION, 1)
                if im.format == "PNG" and is_png16(path):
                    return _from_samples(_orient(read_png16(path, MAX_PIXELS), orientation), 16, path, channels)
                quality = jpeg_quality(im)
                im = ImageOps.exif_transpose(im)  # loads; the result carries no orientation tag
                image = _from_pil(im, path, channels)
                image.jpeg_quality = quality
                return image
    except ImageError:
        raise
    except Image.DecompressionBombError:  # only where the caller set Pillow's limit below MAX_PIXELS
        raise ImageError(f"{path}: refused, larger than Pillow's limit of {Image.MAX_IMAGE_PIXELS} pixels") from None
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except MemoryError:
        raise ImageError(f"{path}: not enough memory to read it") from None
    except (OSError, SyntaxError, ValueError, PNGError) as e:
        raise ImageError(f"{path}: not a readable image ({e})") from None


# the IJG (libjpeg) luminance table at quality 50; quality q scales it by 50/q below 50, by 2 - q/50 above
_IJG_LUMA = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69,
                      56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81,
                      104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99])


def jpeg_quality(im: Image.Image) -> int | None:
    """The IJG quality (1-100) whose luminance table is closest to a JPEG's, by the tables' sums (the order
    of the entries does not matter); None for other formats."""
    tables = getattr(im, "quantization", None) if im.format in ("JPEG", "MPO") else None
    if not tables:
        return None
    total = float(np.sum(tables[min(tables)]))
    q = np.arange(1, 101)
    scale = np.where(q < 50, 5000 / q, 200 - 2 * q)
    sums = np.clip(np.floor((_IJG_LUMA[None] * scale[:, None] + 50) / 100), 1, 255).sum(axis=1)
    return int(q[np.argmin(np.abs(sums - total))])


def check_regular_file(path: Path) -> None:
    """A folder, FIFO, socket or device is refused before it is opened (opening a FIFO would wait forever)."""
    st = path.stat()
    if stat.S_ISDIR(st.st_mode):
        raise ImageError(f"{path}: a folder, not an image file")
    if not stat.S_ISREG(st.st_mode):
        raise ImageError(f"{path}: not a regular file (a FIFO, socket or device); give an image file")
    if st.st_size == 0:
        raise ImageError(f"{path}: empty file")


def check_size(path, width: int, height: int) -> None:
    """The size a header declares, refused past MAX_PIXELS before anything is decoded."""
    if width * height > MAX_PIXELS:
        raise ImageError(f"{path}: {width}x{height} is larger than the {MAX_PIXELS:,} pixel limit "
                         f"({MAX_PIXELS // 1_000_000} megapixels)")


def check_pixels(a: np.ndarray, where) -> None:
    """Pixels that would give garbage, refused: NaN or infinity, floats off the [0, 1] scale (beyond
    FLOAT_RANGE), integers deeper than 16 bits (negative or past 65535). For any reader of images (the
    command line, the Python API)."""
    if a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise ImageError(f"{where}: holds NaN or infinite values")
        lo, hi = float(a.min(initial=0.0)), float(a.max(initial=0.0))
        if lo < FLOAT_RANGE[0] or hi > FLOAT_RANGE[1]:
            raise ImageError(f"{where}: float values from {lo:g} to {hi:g}; float images must be on the [0, 1] "
                             f"scale (within {list(FLOAT_RANGE)} with noise): divide a 0-255 image by 255")
    elif a.dtype.kind in "iu" and a.dtype.itemsize > 2 and a.size and (a.min() < 0 or a.max() > 65535):
        raise ImageError(f"{where}: integer values from {a.min()} to {a.max()}; at most 16 bits (0 to 65535) "
                         "are read")


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
        a = np.asarray(im)
        check_pixels(a, path)
        return _from_samples(a.astype(np.uint16)[..., None], 16, path, channels)
    if im.mode == "F":
        a = np.asarray(im, dtype=np.float32)
        check_pixels(a, path)
        return _from_float(a[..., None], path, channels)
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
    f = a.astype(np.float32)
    f /= 2**bits - 1  # in place: one float copy of a large image, not two
    image = _from_float(f, path, channels)
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


def save_image(path: str | os.PathLike, pixels: np.ndarray, bits: int = 8, alpha: np.ndarray | None = None,
               overwrite: bool = True) -> Path:
    """Write float [H, W, C] in [0, 1] (or an integer array as is), plus an optional alpha [H, W], as an 8- or
    16-bit PNG, atomically (mdrn_fast.atomic: a temporary file of this process, fsynced, then renamed);
    ``overwrite=False``: FileExistsError, and nothing written, when ``path`` exists (even if another process
    made it a moment ago)."""
    a = pixels if pixels.dtype in (np.uint8, np.uint16) else quantize(pixels, bits)
    if a.ndim == 2:
        a = a[..., None]
    if alpha is not None:
        a = np.concatenate([a, quantize(alpha, 8 if a.dtype == np.uint8 else 16)[..., None]], axis=2)

    def write(tmp: Path) -> None:
        if a.dtype == np.uint16:
            write_png16(tmp, a)
        else:
            Image.fromarray(a[..., 0] if a.shape[2] == 1 else a).save(tmp, format="PNG")  # L, LA, RGB or RGBA

    return write_atomically(path, write, overwrite)
