"""The catalog of weights shipped inside the package: mdrn_fast/weights/<preset>-<gray|color>-s<sigma>.safetensors."""
from __future__ import annotations

from pathlib import Path

from .models import MDRN
from .weights_file import load_weights, read_metadata

WEIGHTS_DIR = Path(__file__).with_name("weights")


def weight_name(name: str, sigma, color: bool) -> str:
    return f"{name}-{'color' if color else 'gray'}-s{sigma}.safetensors"


def list_pretrained() -> list[dict]:
    """One dict per shipped file: file name and its metadata."""
    return [dict(file=p.name, **read_metadata(p)) for p in sorted(WEIGHTS_DIR.glob("*.safetensors"))]


def pretrained_path(name: str = "mdrn-base", sigma=25, color: bool = False) -> Path:
    path = WEIGHTS_DIR / weight_name(name, sigma, color)
    if not path.exists():
        shipped = [p.name for p in sorted(WEIGHTS_DIR.glob("*.safetensors"))] or ["none"]
        raise FileNotFoundError(f"no pretrained weights {path.name}; shipped: {', '.join(shipped)}")
    return path


def pretrained(name: str = "mdrn-base", sigma=25, color: bool = False, backend: str = "auto") -> MDRN:
    """The shipped MDRN for (preset, sigma, gray/color), in eval mode."""
    model, _ = load_weights(pretrained_path(name, sigma, color), backend=backend)
    return model
