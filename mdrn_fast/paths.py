"""Where images are: the standard sets under the data root ($MDRN_FAST_DATA, else a per-user cache folder that
`mdrn-fast data fetch` fills), and the image files of a folder (every type Pillow reads)."""
from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from .datasets import MANIFEST, default_root

SETS = {name: entry["folder"] for name, entry in MANIFEST.items()}  # e.g. "BSD68" -> "test/BSD68"


def image_suffixes() -> frozenset[str]:
    """File suffixes of every image format this Pillow can read (.png, .jpg, .webp, .tif, ...)."""
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def data_root() -> Path:
    """The data folder: $MDRN_FAST_DATA, else the per-user cache folder (see mdrn_fast.datasets)."""
    return default_root()


def image_files(folder: str | os.PathLike) -> list[Path]:
    """Sorted image files directly in ``folder`` (hidden files and other suffixes left out)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    suffixes = image_suffixes()
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in suffixes and p.is_file() and not p.name.startswith("."))


def special_files(folder: str | os.PathLike) -> list[Path]:
    """Entries of ``folder`` named like images that are neither files nor folders (FIFOs, sockets, devices):
    image_files leaves them out, and a caller can say so."""
    suffixes = image_suffixes()
    return sorted(p for p in Path(folder).iterdir()
                  if p.suffix.lower() in suffixes and not p.name.startswith(".") and p.exists()
                  and not p.is_file() and not p.is_dir())


def dataset(name_or_path: str | os.PathLike, root: str | os.PathLike | None = None) -> list[Path]:
    """Image files of a standard set ("BSD68", ...) or of a folder; an error saying how to get a missing set."""
    name = str(name_or_path)
    if name in SETS:
        base = Path(root) if root is not None else data_root()
        folder = base / SETS[name]
        if not folder.is_dir() or not image_files(folder):
            raise FileNotFoundError(f"image set {name} is not in {base} (get it with `mdrn-fast data fetch {name}`"
                                    + ("" if root is not None else f", or set MDRN_FAST_DATA to a folder holding {SETS[name]}")
                                    + ")")
    else:
        folder = Path(name)
        if not folder.is_dir():
            raise FileNotFoundError(f"{name}: neither a folder nor a standard set ({', '.join(SETS)})")
    files = image_files(folder)
    if not files:
        raise FileNotFoundError(f"{folder}: no images in this folder")
    return files
