"""The "cpu" and "cuda" backends: Python wrappers (fake impls, autograd) over ``torch.ops.mdrn_fast``.

One module per op family, named as its source in csrc/; each is imported here automatically.
"""
import importlib
import pkgutil

from ..extension import REBUILD, unavailable_reason

_reason = unavailable_reason()
if _reason is not None:
    raise ImportError(_reason)

for _m in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_m.name}")
