"""mdrn_fast: fast MDRN image denoising (fused Triton and C++/CUDA kernels) and HMDS distillation."""
import importlib

from . import ops, reference
from .models import MDRN, MDRB, PRESETS, count_parameters, mdrn
from .registry import BackendError, available_backends

__version__ = "0.1.0"

# Heavier parts load on first use, so that `import mdrn_fast` stays quick.
_LAZY = {
    "distill": "mdrn_fast.distill",
    "denoise": "mdrn_fast.inference",
    "pretrained": "mdrn_fast.catalog",
    "list_pretrained": "mdrn_fast.catalog",
}


def __getattr__(name):
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        return module if module.__name__.endswith("." + name) else getattr(module, name)
    raise AttributeError(f"module 'mdrn_fast' has no attribute {name!r}")


__all__ = ["MDRN", "MDRB", "PRESETS", "BackendError", "available_backends", "count_parameters", "mdrn", "ops",
           "reference", "distill", "denoise", "pretrained", "list_pretrained",
           "__version__"]
