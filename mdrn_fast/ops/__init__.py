"""The public ops of docs/DESIGN.md section 4: validate, then dispatch to the chosen backend.

``backend`` is "torch" (the reference in ``mdrn_fast.reference``), "triton", "cuda", "cpu", or
"auto" (best usable for the inputs' device). Every op is autograd-capable on every backend.

One module per op family holds the family's contract: the public functions and their checks, example inputs
(what the tests and the benchmark run), the fakes of the fused ops and their backward formulas. Every module
here is imported (a new family is a new file: docs/adding-a-fused-op.md).
"""
from __future__ import annotations

import importlib
import pkgutil

FAMILIES = tuple(importlib.import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__)
                 if not m.name.startswith("_"))

OPS = tuple(op for family in FAMILIES for op in family.PUBLIC)  # the public ops, e.g. "degrade"
_FAMILY_OF = {op: family for family in FAMILIES for op in family.PUBLIC}
globals().update({op: getattr(family, op) for op, family in _FAMILY_OF.items()})  # ops.degrade(...) etc.

# what mdrn_fast.op_wiring registers for each fused backend
FAKES = {name: fake for family in FAMILIES for name, fake in family.FAKES.items()}
AUTOGRAD = {name: make for family in FAMILIES for name, make in family.AUTOGRAD.items()}


def example(op: str, shape, scale: int = 2, generator=None) -> dict:
    """Keyword arguments for ``op`` whose output is about ``shape`` [N, C, H, W] (float32, CPU): the inputs the
    tests and the benchmark run. ``scale`` is degrade's and reconstruct's; ``generator`` a torch.Generator."""
    return _FAMILY_OF[op].example(op, shape, scale, generator)


__all__ = ["OPS", "FAMILIES", "FAKES", "AUTOGRAD", "example", *OPS]
