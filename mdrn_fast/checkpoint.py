"""Training checkpoints: written atomically, read with torch.load(weights_only=True) only (no code runs)."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import torch

from .atomic import write_atomically


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """Write to a temporary file of this process beside ``path``, fsync, then rename over it: a crash or a full
    disk at any point leaves the previous checkpoint intact (and no temporary file behind)."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            torch.save(state, f)

    try:
        return write_atomically(path, write)
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise OSError(errno.ENOSPC, "no space left on the disk to write the checkpoint; the previous one is "
                          "kept (free some space, then --resume)", str(path)) from None
        raise


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Read a checkpoint; a clear error for a missing, truncated or unsafe (code-carrying) file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    if not path.is_file():  # a FIFO or a device would block the read forever
        raise ValueError(f"{path}: not a regular file (a FIFO, socket or device)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises several types for truncated or foreign files
        raise ValueError(f"{path}: not a loadable checkpoint ({type(e).__name__}: {str(e).splitlines()[0]})") from None
