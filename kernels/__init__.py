"""The "triton" backend (installed as ``mdrn_fast.kernels``): one module per op family.

Each module holds its Triton kernels, launchers and autograd registration, and registers its
ops with ``mdrn_fast.registry.register(op, "triton")``; all are imported here automatically.
"""
import importlib
import pkgutil

for _m in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_m.name}")
