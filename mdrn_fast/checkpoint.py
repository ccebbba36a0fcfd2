"""Training checkpoints: written atomically, read with torch.load(weights_only=True) only (no code runs)."""
from __future__ import annotations

import errno
import json
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
        first_line = (str(e).splitlines() or [""])[0]
        raise ValueError(f"{path}: not a loadable checkpoint ({type(e).__name__}: {first_line})") from None


# what mdrn_fast.train writes into a checkpoint, and the type each entry holds
TRAINING_ENTRIES = {"objective": dict, "optimizer": dict, "scheduler": dict, "step": int, "config": str}


def load_training_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """load_checkpoint of a file that mdrn_fast.train wrote: a ValueError that says so for anything else (a
    tensor, another program's checkpoint, one with an entry missing or of the wrong kind)."""
    state = load_checkpoint(path, map_location)
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a training checkpoint of mdrn-fast (it holds a {type(state).__name__})")
    wrong = [k for k, kind in TRAINING_ENTRIES.items() if not isinstance(state.get(k), kind)]
    if not wrong:
        try:
            config = json.loads(state["config"])
        except ValueError:
            config = None
        if not isinstance(config, dict):
            wrong = ["config"]
    if wrong:
        raise ValueError(f"{path}: not a training checkpoint of mdrn-fast ({', '.join(wrong)} missing or malformed)")
    return state
