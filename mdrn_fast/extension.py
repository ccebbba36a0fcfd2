"""Loading the C++/CUDA extension ``mdrn_fast._C``, with a clear word when it cannot be used.

The extension registers its ops under ``torch.ops.mdrn_fast``; ``mdrn_fast.cpp`` wraps them as the
"cpu" and "cuda" backends. setup.py records the torch it was built against in ``_build_info.json``,
so that a torch upgrade reads as "rebuild" rather than an undefined-symbol traceback.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import torch

REBUILD = "rebuild it with: pip install --no-build-isolation -e .  (see README, Troubleshooting)"
_BUILD_INFO = Path(__file__).with_name("_build_info.json")


def build_info() -> dict:
    """What setup.py recorded about the build: torch version, CUDA, archs; {} when never built."""
    try:
        return json.loads(_BUILD_INFO.read_text())
    except (OSError, ValueError):
        return {}


@functools.lru_cache(maxsize=None)
def unavailable_reason() -> str | None:
    """None when ``mdrn_fast._C`` is loaded and matches the running torch, else why not."""
    info = build_info()
    built_for = info.get("torch")
    if built_for and built_for != torch.__version__:
        return (f"mdrn_fast._C was built against torch {built_for} but torch {torch.__version__} is running; "
                + REBUILD)
    try:
        from . import _C  # noqa: F401  (loading it registers torch.ops.mdrn_fast.*)
    except ImportError as e:
        if "undefined symbol" in str(e):
            return f"mdrn_fast._C does not match the running torch {torch.__version__} ({e}); " + REBUILD
        return f"mdrn_fast._C is not built ({e}); " + REBUILD
    except OSError as e:
        return f"mdrn_fast._C failed to load ({e}); " + REBUILD
    return None


def built_with_cuda() -> bool:
    return unavailable_reason() is None and bool(torch.ops.mdrn_fast.built_with_cuda())
