"""The catalog of weights shipped inside the package: mdrn_fast/weights/<name>-<gray|color>-s<sigma>.safetensors
(<name>: a preset, or a distilled student such as mdrn-tiny-hmds-a; a blind model would be s<lo>-<hi>). Which
file serves a given sigma and color mode is mdrn_fast.model_choice's rule, which pretrained() follows."""
from __future__ import annotations

from pathlib import Path

from .weights_file import load_weights, read_metadata

WEIGHTS_DIR = Path(__file__).with_name("weights")


def _sigma_text(sigma) -> str:
    """25, 25.0 and "25" all name the s25 files; 12.5 names s12.5."""
    value = float(sigma)
    return f"{value:g}" if value != int(value) else str(int(value))


def weight_name(name: str, sigma, color: bool) -> str:
    return f"{name}-{'color' if color else 'gray'}-s{_sigma_text(sigma)}.safetensors"


def list_pretrained() -> list[dict]:
    """One dict per shipped file: file name and its metadata."""
    return [dict(file=p.name, **read_metadata(p)) for p in sorted(WEIGHTS_DIR.glob("*.safetensors"))]


def pretrained(name: str = "mdrn-base", sigma=25, color: bool = False, backend: str = "auto"):
    """The shipped model for ``name`` in eval mode: a file name that list_pretrained() shows (with or without
    .safetensors; sigma and color are then those of the file), or a preset / student name, with sigma (any
    float in mdrn_fast.model_choice.SIGMA_RANGE) and color chosen by mdrn_fast.model_choice's rule, the one
    the command line uses: a blind model, else the nearest level, else for color the gray model on each
    channel. A choice other than an exact one is said in a UserWarning."""
    import warnings

    from .model_choice import choose, shipped_file

    file = shipped_file(name)
    if file is not None:
        return load_weights(file, backend=backend)[0].eval()
    choice = choose(name, sigma, color)
    if choice.note:
        warnings.warn(choice.note, stacklevel=2)
    return choice.load(backend)
