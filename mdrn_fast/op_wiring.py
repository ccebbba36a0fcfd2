"""Wiring a fused backend's ops to their family's contract: fake implementations and autograd formulas.

The Triton ops (``mdrn_fast_triton::*``, kernels/) and the C++ ops (``mdrn_fast::*``, csrc/) have the same
schemas, so one fake per op (output shapes, dtypes and strides: what torch.compile traces and opcheck
checks) and one backward formula, calling the namespace's own ``<op>_backward``, serve both; a backend whose
output layouts differ passes its own fakes. They live in the family's module, mdrn_fast/ops/<family>.py. A
backend defines its ops and then calls ``wire(namespace, op, ...)``.
"""
from __future__ import annotations

import torch

from .ops import AUTOGRAD, FAKES
from .ops._common import opmath  # noqa: F401  (the kernels' accumulation dtype, used by both backends)


def wire(namespace: str, *names: str, fakes: dict | None = None) -> None:
    """Register the fakes (op and its backward) and the autograd of ``names`` in ``namespace``; ``fakes``
    replaces the family's fakes for a backend whose output layouts differ (the C++ ops keep channels_last)."""
    ops = getattr(torch.ops, namespace)
    fakes = {**FAKES, **(fakes or {})}
    for name in names:
        for op in (name, f"{name}_backward"):
            if op in fakes:
                torch.library.register_fake(f"{namespace}::{op}", fakes[op])
        if name in AUTOGRAD:
            setup, backward = AUTOGRAD[name](ops)
            torch.library.register_autograd(f"{namespace}::{name}", backward, setup_context=setup)
