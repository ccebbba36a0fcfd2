"""Weight files: safetensors with JSON metadata. Loading never runs code (no pickle).

Metadata keys: "format" (FORMAT), "config" (JSON of MDRN.config()), and free-form strings such as
"preset", "sigma" ("25", or "blind:0-55"), "val_psnr", "train" (JSON of how it was made).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors import safe_open
from safetensors.torch import save_file

from .atomic import write_atomically
from .models import MDRN
from .models.mdrn import check_config

FORMAT = "mdrn_fast.weights.v1"
FLOAT_DTYPES = ("F32", "F16", "BF16", "F64")


def save_weights(path: str | os.PathLike, model: MDRN, **metadata) -> Path:
    """Write ``model``'s weights and ``metadata`` (values JSON-encoded unless str) atomically (fsynced)."""
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    meta.update(format=FORMAT, config=json.dumps(model.config()))
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return write_atomically(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))


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


def read_config(path: str | os.PathLike, meta: dict) -> dict:
    """The model configuration of a weight file, checked against sane ranges before anything is built
    (models.mdrn.check_config): MDRN's keyword arguments."""
    try:
        return check_config(json.loads(meta.get("config", "null")))
    except ValueError as e:  # json.JSONDecodeError included
        raise ValueError(f"{path}: bad model config ({e})") from None


def read_state(path: str | os.PathLike, shapes: dict[str, tuple], device: str = "cpu") -> dict:
    """The tensors of a weight file, refused with one line unless they are exactly ``shapes`` (names and
    sizes, read from the file's header before any is loaded), floating point, and finite."""
    try:
        with safe_open(str(path), framework="pt", device=device) as f:
            found = {k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()) for k in f.keys()}
            missing, unexpected = sorted(set(shapes) - set(found)), sorted(set(found) - set(shapes))
            if missing or unexpected:
                raise ValueError(f"{path}: weights do not match the config: missing {missing[:5]}, "
                                 f"unexpected {unexpected[:5]}")
            for k, (shape, dtype) in found.items():
                if shape != tuple(shapes[k]):
                    raise ValueError(f"{path}: {k} has shape {list(shape)}, the config needs {list(shapes[k])}")
                if dtype not in FLOAT_DTYPES:
                    raise ValueError(f"{path}: {k} is {dtype}; weights must be floating point ({', '.join(FLOAT_DTYPES)})")
            state = {k: f.get_tensor(k) for k in found}
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{path}: not a readable safetensors weight file ({e})") from None
    bad = [k for k, v in state.items() if not torch.isfinite(v).all()]
    if bad:
        raise ValueError(f"{path}: {bad[0]} holds NaN or infinite values ({len(bad)} tensor(s)); the file is damaged "
                         "or its training diverged")
    return state


def load_weights(path: str | os.PathLike, backend: str = "auto", map_location: str = "cpu") -> tuple[MDRN, dict]:
    """Build the MDRN the file describes and load its weights; returns (model in eval mode, metadata).
    FileNotFoundError when there is no file; ValueError (one line) for anything wrong in it, found before the
    model is built."""
    meta = read_metadata(path)
    config = read_config(path, meta)
    with torch.device("meta"):  # the shapes the config implies, without memory
        shapes = {k: v.shape for k, v in MDRN(backend="torch", **config).state_dict().items()}
    state = read_state(path, shapes, map_location)
    model = MDRN(backend=backend, **config)
    model.load_state_dict(state)
    return model.eval(), meta


def load_into(model: MDRN, path: str | os.PathLike) -> dict:
    """Load a weight file into an existing model, refusing (ValueError, one line) one made for another
    configuration or holding other shapes."""
    meta = read_metadata(path)
    config = dict(read_config(path, meta))
    config["scales"] = list(config["scales"])  # as MDRN.config() gives them
    if config != model.config():
        raise ValueError(f"{path}: made for {config}, but the model is {model.config()}")
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    model.load_state_dict(read_state(path, shapes, str(next(model.parameters()).device)))
    return meta


__all__ = ["FORMAT", "save_weights", "read_metadata", "read_config", "read_state", "load_weights", "load_into"]
