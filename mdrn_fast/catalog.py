"""The catalog of weights shipped inside the package: mdrn_fast/weights/<name>-<gray|color>-s<sigma>.safetensors
(<name>: a preset, or a distilled student such as mdrn-tiny-hmds-a; a blind model would be s<lo>-<hi>)."""
from __future__ import annotations

import re
from pathlib import Path

from .models import MDRN
from .weights_file import load_weights, read_metadata

WEIGHTS_DIR = Path(__file__).with_name("weights")
_FILE = re.compile(r"^(?P<name>.+)-(?P<kind>gray|color)-s(?P<sigma>\d+(?:\.\d+)?)\.safetensors$")


def _sigma_text(sigma) -> str:
    """25, 25.0 and "25" all name the s25 files; 12.5 names s12.5."""
    value = float(sigma)
    return f"{value:g}" if value != int(value) else str(int(value))


def weight_name(name: str, sigma, color: bool) -> str:
    return f"{name}-{'color' if color else 'gray'}-s{_sigma_text(sigma)}.safetensors"


def list_pretrained() -> list[dict]:
    """One dict per shipped file: file name and its metadata."""
    return [dict(file=p.name, **read_metadata(p)) for p in sorted(WEIGHTS_DIR.glob("*.safetensors"))]


def shipped_sigmas(name: str = "mdrn-base", color: bool = False) -> list[float]:
    """The noise levels with a shipped file for (name, gray/color), ascending."""
    out = []
    for p in WEIGHTS_DIR.glob("*.safetensors"):
        m = _FILE.match(p.name)
        if m and m["name"] == name and (m["kind"] == "color") == color:
            out.append(float(m["sigma"]))
    return sorted(out)


def nearest_sigma(sigma: float, available: list[float]) -> float:
    """The shipped level closest to ``sigma`` (on the 0-255 scale); ties go to the higher one, which removes
    more noise."""
    if not available:
        raise FileNotFoundError("no shipped weights to choose from")
    return min(available, key=lambda s: (abs(s - sigma), -s))


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
