"""Random inputs for every op of docs/DESIGN.md section 4, shared by the parity tests of all backends.

A case is a dict of keyword arguments for ``mdrn_fast.ops.<op>`` (tensors in float32, NCHW);
``prepare`` casts and lays them out for one test.
"""
from __future__ import annotations

import torch

from helpers import HAS_GPU

# (N, C, H, W): channels 1, 3, 16, 24, 32, 64; H, W multiples of 4 but not powers of two; batch 1 and 3
SHAPES = [(1, 1, 8, 12), (3, 3, 12, 20), (1, 16, 20, 12), (3, 24, 8, 28), (1, 32, 16, 12), (1, 64, 8, 8)]
if HAS_GPU:
    SHAPES += [(3, 32, 132, 100), (2, 64, 256, 252)]

OPS = ("bias_lrelu", "add_residual", "degrade", "reconstruct", "fuse", "channel_attention")

SCHEMA_ARGS = {  # the ops' schemas (C++ and Triton alike) take the reference arguments, minus Python defaults
    "bias_lrelu": lambda c: (c["t"], c["bias"], c["slope"]),
    "add_residual": lambda c: (c["t"], c["r"]),
    "degrade": lambda c: (c["x"], c["weight"], c["bias"], c["scale"], c["slope"]),
    "reconstruct": lambda c: (c["h"], c["weight"], c["bias"], c["scale"]),
    "fuse": lambda c: (c["parts"], c["weight"], c["bias"]),
    "channel_attention": lambda c: (c["x"], c["f"], c["w1"], c["b1"], c["w2"], c["b2"]),
}


def _randn(*shape):
    return torch.randn(*shape)


def make_case(op: str, shape, scale: int = 2) -> dict:
    n, c, h, w = shape
    if op == "bias_lrelu":
        return dict(t=_randn(n, c, h, w), bias=_randn(c), slope=0.2)
    if op == "add_residual":
        return dict(t=_randn(n, c, h, w), r=_randn(n, c, h, w))
    if op == "degrade":
        k = 1.0 / (c * scale * scale) ** 0.5  # keeps outputs O(1), like PyTorch's default init
        return dict(x=_randn(n, c, h, w), weight=_randn(c, c, scale, scale) * k, bias=_randn(c) * k,
                    scale=scale, slope=0.2)
    if op == "reconstruct":
        hs, ws = max(1, h // scale), max(1, w // scale)
        return dict(h=_randn(n, c, hs, ws), weight=_randn(c * scale * scale, c, 1, 1) / c ** 0.5,
                    bias=_randn(c * scale * scale) * 0.1, scale=scale)
    if op == "fuse":
        parts = [_randn(n, c, h, w) for _ in range(3)]
        return dict(parts=parts, weight=_randn(c, 3 * c, 1, 1) / (3 * c) ** 0.5, bias=_randn(c) * 0.1)
    if op == "channel_attention":
        r = max(1, c // 4)
        return dict(x=_randn(n, c, h, w), f=_randn(n, c, h, w), w1=_randn(r, c) / c ** 0.5, b1=_randn(r) * 0.1,
                    w2=_randn(c, r) / r ** 0.5, b2=_randn(c) * 0.1)
    raise KeyError(op)


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
