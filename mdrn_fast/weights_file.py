"""Weight files: safetensors with JSON metadata. Loading never runs code (no pickle).

Metadata keys: "format" (FORMAT), "config" (JSON of MDRN.config()), and free-form strings such as
"preset", "sigma" ("25", or "blind:0-55"), "val_psnr", "train" (JSON of how it was made).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from safetensors import safe_open

from .models import MDRN

FORMAT = "mdrn_fast.weights.v1"


def save_weights(path: str | os.PathLike, model: MDRN, **metadata) -> Path:
    """Write ``model``'s weights and ``metadata`` (values JSON-encoded unless str) atomically."""
    path = Path(path)
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    meta.update(format=FORMAT, config=json.dumps(model.config()))
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


def read_metadata(path: str | os.PathLike) -> dict:
    """The metadata of a weight file; FileNotFoundError when there is no file, ValueError when it is not one."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such weight file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable safetensors weight file ({e})") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not an mdrn_fast weight file (format {meta.get('format')!r}, expected {FORMAT!r})")
    return meta


def load_weights(path: str | os.PathLike, backend: str = "auto", map_location: str = "cpu") -> tuple[MDRN, dict]:
    """Build the MDRN the file describes and load its weights; returns (model in eval mode, metadata)."""
    meta = read_metadata(path)
    config = json.loads(meta["config"])
    model = MDRN(backend=backend, **config)
    state = load_file(str(path), device=map_location)
    missing, unexpected = set(model.state_dict()) - set(state), set(state) - set(model.state_dict())
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not match config {config}: "
                         f"missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}")
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{path}: weights do not match config {config}: {e}") from None
    return model.eval(), meta


def load_into(model: MDRN, path: str | os.PathLike) -> dict:
    """Load a weight file into an existing model, refusing one made for another configuration."""
    meta = read_metadata(path)
    config = json.loads(meta["config"])
    if config != model.config():
        raise ValueError(f"{path}: made for {config}, but the model is {model.config()}")
    model.load_state_dict(load_file(str(path), device=str(next(model.parameters()).device)))
    return meta


__all__ = ["FORMAT", "save_weights", "read_metadata", "load_weights", "load_into"]
