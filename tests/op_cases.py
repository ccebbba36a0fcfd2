"""Random inputs for every op of docs/DESIGN.md section 4, shared by the parity tests of all backends.

A case is a dict of keyword arguments for ``mdrn_fast.ops.<op>`` (tensors in float32, NCHW);
``prepare`` casts and lays them out for one test.
"""
from __future__ import annotations

import inspect

import torch

from helpers import HAS_GPU
from mdrn_fast import ops

# (N, C, H, W): channels 1, 3, 16, 24, 32, 64; H, W multiples of 4 but not powers of two; batch 1 and 3
SHAPES = [(1, 1, 8, 12), (3, 3, 12, 20), (1, 16, 20, 12), (3, 24, 8, 28), (1, 32, 16, 12), (1, 64, 8, 8)]
if HAS_GPU:
    SHAPES += [(3, 32, 132, 100), (2, 64, 256, 252)]

OPS = tuple(op for op in ops.OPS if op != "add_noise")  # the deterministic ones (add_noise: its own tests)

def schema_args(op: str, case: dict) -> tuple:
    """The positional arguments of the fused ops' schema (C++ and Triton alike): the public function's
    arguments in order, defaults filled in."""
    params = inspect.signature(getattr(ops, op)).parameters.values()
    return tuple(case.get(p.name, p.default) for p in params if p.kind is p.POSITIONAL_OR_KEYWORD)


def make_case(op: str, shape, scale: int = 2) -> dict:
    """The op's example inputs (mdrn_fast.ops.example: the same the benchmark runs), from the global RNG."""
    return ops.example(op, shape, scale)


def prepare(case: dict, dtype: torch.dtype, device: str, channels_last: bool = False, grad: bool = True) -> dict:
    """A copy of ``case`` in ``dtype`` on ``device``; 4-D tensors optionally channels_last; leaves need grad."""
    def conv(t):
        t = t.to(device=device, dtype=dtype)
        if channels_last and t.dim() == 4:
            t = t.contiguous(memory_format=torch.channels_last)
        return t.detach().requires_grad_(grad)

    return {k: [conv(p) for p in v] if isinstance(v, list) else conv(v) if isinstance(v, torch.Tensor) else v
            for k, v in case.items()}


def leaves(kwargs: dict) -> list[tuple[str, torch.Tensor]]:
    """(name, tensor) of every tensor argument, list elements included, in a fixed order."""
    out = []
    for k, v in kwargs.items():
        if isinstance(v, list):
            out += [(f"{k}[{i}]", p) for i, p in enumerate(v)]
        elif isinstance(v, torch.Tensor):
            out.append((k, v))
    return out
