"""Where the image sets are: $MDRN_FAST_DATA, else ../shared/data beside the checkout or the cwd."""
from __future__ import annotations

import os
from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
# the standard sets (DESIGN section 6; ../shared/data/README.md)
SETS = {
    "Set12": "test/Set12",
    "BSD68": "test/BSD68",
    "CBSD68": "test/CBSD68",
    "Train400": "train/Train400",
    "BSDS200": "train/BSDS200",
}


def data_root() -> Path | None:
    """The data folder, or None when there is none."""
    env = os.environ.get("MDRN_FAST_DATA")
    if env:
        return Path(env)
    for base in (Path(__file__).resolve().parents[1], Path.cwd()):
        candidate = base.parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return None


def image_files(folder: str | os.PathLike) -> list[Path]:
    """Sorted image files directly in ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def dataset(name_or_path: str | os.PathLike, root: str | os.PathLike | None = None) -> list[Path]:
    """Image files of a standard set ("BSD68", ...) or of a folder; a clear error when absent."""
    name = str(name_or_path)
    if name in SETS:
        base = Path(root) if root is not None else data_root()
        if base is None:
            raise FileNotFoundError(f"image set {name}: no data folder; set MDRN_FAST_DATA or pass --data "
                                    "(expected ../shared/data beside the checkout)")
        folder = base / SETS[name]
    else:
        folder = Path(name)
    files = image_files(folder)
    if not files:
        raise FileNotFoundError(f"image set {name}: no images in {folder}")
    return files
