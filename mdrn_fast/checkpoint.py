"""Training checkpoints: written atomically, read with torch.load(weights_only=True) only (no code runs)."""
from __future__ import annotations

import os
from pathlib import Path

import torch


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``: a crash at any point
    leaves the previous checkpoint intact."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Read a checkpoint; a clear error for a missing, truncated or unsafe (code-carrying) file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises several types for truncated or foreign files
        raise ValueError(f"{path}: not a loadable checkpoint ({type(e).__name__}: {str(e).splitlines()[0]})") from None
