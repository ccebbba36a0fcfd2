"""16-bit PNG files, which Pillow reads and writes only as 8-bit when they have colour or alpha: a small reader
and writer of the PNG format (W3C PNG specification) for bit depth 16 and every colour type but palette.

Rows are unfiltered by the C++ extension's ``png_unfilter`` (each byte depends on the one before it); without
the extension a NumPy fallback does the same, slowly for the Average and Paeth filters.
"""
from __future__ import annotations

import os
import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
SAMPLES = {0: 1, 4: 2, 2: 3, 6: 4}  # colour type -> samples per pixel (gray, gray + alpha, RGB, RGBA)
COLOUR_TYPE = {c: t for t, c in SAMPLES.items()}


class PNGError(ValueError):
    """Not a PNG this reader handles, or a damaged one; the message says which."""


def header(data: bytes) -> tuple[int, int, int, int, int] | None:
    """(width, height, bit depth, colour type, interlace) of PNG bytes, or None when they are not a PNG."""
    if data[:8] != SIGNATURE or data[12:16] != b"IHDR" or len(data) < 33:
        return None
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    return w, h, depth, ctype, interlace


def is_png16(path: str | os.PathLike) -> bool:
    with open(path, "rb") as f:
        head = header(f.read(33))
    return head is not None and head[2] == 16


def read_png16(path: str | os.PathLike, max_pixels: int | None = None) -> np.ndarray:
    """The pixels of a 16-bit PNG as uint16 [H, W, samples] (samples: 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA).
    Memory stays within the size the header declares (refused past ``max_pixels``): the image data is
    decompressed with that size as a limit, so a small file that inflates to gigabytes is refused."""
    with open(path, "rb") as f:
        data = f.read()
    head = header(data)
    if head is None:
        raise PNGError("not a PNG file")
    w, h, depth, ctype, interlace = head
    if depth != 16 or ctype not in SAMPLES:
        raise PNGError(f"bit depth {depth}, colour type {ctype}: not a 16-bit gray/RGB(A) PNG")
    if interlace:
        raise PNGError("interlaced (Adam7) 16-bit PNG is not supported: save it without interlacing")
    if max_pixels is not None and w * h > max_pixels:
        raise PNGError(f"{w}x{h} is larger than the {max_pixels} pixel limit")
    idat, pos = [], 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        crc = data[pos + 8 + length:pos + 12 + length]
        if len(body) != length or len(crc) != 4 or struct.unpack(">I", crc)[0] != zlib.crc32(kind + body) & 0xFFFFFFFF:
            raise PNGError(f"damaged {kind.decode('latin-1')} chunk (truncated or wrong CRC)")
        if kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    else:
        raise PNGError("truncated: no IEND chunk")
    bpp = 2 * SAMPLES[ctype]
    expected = h * (1 + w * bpp)
    try:  # at most one byte past what the header declares: enough to tell that there is more
        raw = zlib.decompressobj().decompress(b"".join(idat), expected + 1)
    except zlib.error as e:
        raise PNGError(f"damaged image data ({e})") from None
    if len(raw) > expected:
        raise PNGError(f"image data inflates past the {expected} bytes its {w}x{h} header declares")
    if len(raw) != expected:
        raise PNGError(f"image data has {len(raw)} bytes, {expected} expected")
    rows = unfilter(np.frombuffer(raw, np.uint8).reshape(h, 1 + w * bpp), bpp)
    return rows.view(">u2").reshape(h, w, SAMPLES[ctype]).astype(np.uint16)


def unfilter(raw: np.ndarray, bpp: int) -> np.ndarray:
    """[H, 1 + stride] filtered rows -> [H, stride] bytes."""
    try:
        import torch

        from . import extension

        if extension.unavailable_reason() is None:
            return torch.ops.mdrn_fast.png_unfilter(torch.from_numpy(raw.copy()), bpp).numpy()
    except ImportError:
        pass
    return _unfilter_numpy(raw, bpp)


def _unfilter_numpy(raw: np.ndarray, bpp: int) -> np.ndarray:
    out = np.zeros((raw.shape[0], raw.shape[1] - 1), np.uint8)
    prior = np.zeros(out.shape[1], np.int32)
    for y in range(raw.shape[0]):
        kind, f = raw[y, 0], raw[y, 1:].astype(np.int32)
        if kind == 0:
            cur = f
        elif kind == 1:  # Sub: a running sum per byte lane
            cur = np.cumsum(f.reshape(-1, bpp), axis=0).reshape(-1)
        elif kind == 2:  # Up
            cur = f + prior
        elif kind in (3, 4):  # Average, Paeth: byte by byte
            cur = np.zeros_like(f)
            for i in range(f.size):
                a = cur[i - bpp] if i >= bpp else 0
                b = prior[i]
                if kind == 3:
                    pred = (a + b) // 2
                else:
                    c = prior[i - bpp] if i >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                cur[i] = (f[i] + pred) & 0xFF
        else:
            raise PNGError(f"row {y} has filter type {kind} (0 to 4 are defined)")
        out[y] = cur & 0xFF
        prior = out[y].astype(np.int32)
    return out


def write_png16(path: str | os.PathLike, pixels: np.ndarray) -> None:
    """Write uint16 [H, W, samples] (or [H, W]) as a 16-bit PNG (rows unfiltered, zlib level 6)."""
    a = np.asarray(pixels)
    if a.ndim == 2:
        a = a[..., None]
    if a.dtype != np.uint16 or a.shape[2] not in COLOUR_TYPE:
        raise ValueError(f"expected uint16 [H, W, 1-4], got {a.dtype} {a.shape}")
    h, w, c = a.shape
    rows = np.zeros((h, 1 + w * c * 2), np.uint8)  # filter type 0 in column 0
    rows[:, 1:] = np.ascontiguousarray(a.astype(">u2")).view(np.uint8).reshape(h, -1)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, COLOUR_TYPE[c], 0, 0, 0)
    with open(path, "wb") as f:
        f.write(SIGNATURE + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
                + chunk(b"IEND", b""))
