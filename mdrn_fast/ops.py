"""The public ops of docs/DESIGN.md section 4: validate, then dispatch to the chosen backend.

``backend`` is "torch" (the reference in ``mdrn_fast.reference``), "triton", "cuda", "cpu", or
"auto" (best usable for the inputs' device). Every op is autograd-capable on every backend.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from . import checks, reference
from .registry import lookup, register

OPS = ("bias_lrelu", "add_residual", "degrade", "reconstruct", "fuse", "channel_attention", "add_noise")
for _op in OPS:
    register(_op, "torch")(getattr(reference, _op))


def _amp(*tensors):
    """Under torch.autocast, run in the autocast dtype (the fused kernels take one dtype for all inputs)."""
    first = tensors[0][0] if isinstance(tensors[0], list) else tensors[0]
    kind = first.device.type
    if not torch.is_autocast_enabled(kind):
        return tensors
    dt = torch.get_autocast_dtype(kind)
    return tuple([p.to(dt) for p in t] if isinstance(t, list) else t.to(dt) for t in tensors)


def bias_lrelu(t: Tensor, bias: Tensor, slope: float = reference.LEAKY_SLOPE, *, backend: str = "auto") -> Tensor:
    """lrelu(t + bias): the epilogue of a bias-free conv."""
    checks.tensor("t", t, 4)
    checks.tensor("bias", bias, 1)
    t, bias = _amp(t, bias)
    checks.shape("bias", bias, (t.shape[1],))
    checks.same([("t", t), ("bias", bias)])
    return lookup("bias_lrelu", backend, t.device)(t, bias, slope)


def add_residual(t: Tensor, r: Tensor, *, backend: str = "auto") -> Tensor:
    """t + r: the residual epilogue."""
    checks.tensor("t", t)
    checks.tensor("r", r)
    t, r = _amp(t, r)
    checks.shape("r", r, t.shape)
    checks.same([("t", t), ("r", r)])
    return lookup("add_residual", backend, t.device)(t, r)


def degrade(x: Tensor, weight: Tensor, bias: Tensor, scale: int, slope: float = reference.LEAKY_SLOPE,
            *, backend: str = "auto") -> Tensor:
    """lrelu(conv2d(x, weight, bias, stride=scale)): learned scale-fold downscale."""
    checks.positive_int("scale", scale)
    checks.tensor("x", x, 4)
    checks.tensor("weight", weight, 4)
    checks.tensor("bias", bias, 1)
    x, weight, bias = _amp(x, weight, bias)
    checks.shape("weight", weight, (weight.shape[0], x.shape[1], scale, scale))
    checks.shape("bias", bias, (weight.shape[0],))
    if x.shape[2] < scale or x.shape[3] < scale:
        raise ValueError(f"x: spatial size {tuple(x.shape[2:])} is smaller than scale {scale}")
    checks.same([("x", x), ("weight", weight), ("bias", bias)])
    return lookup("degrade", backend, x.device)(x, weight, bias, scale, slope)


def reconstruct(h: Tensor, weight: Tensor, bias: Tensor, scale: int, *, backend: str = "auto") -> Tensor:
    """pixel_shuffle(conv1x1(h, weight, bias), scale): back to full resolution."""
    checks.positive_int("scale", scale)
    checks.tensor("h", h, 4)
    checks.tensor("weight", weight, 4)
    checks.tensor("bias", bias, 1)
    h, weight, bias = _amp(h, weight, bias)
    if weight.shape[0] % (scale * scale):
        raise ValueError(f"weight: output channels {weight.shape[0]} are not a multiple of scale**2 = {scale * scale}")
    checks.shape("weight", weight, (weight.shape[0], h.shape[1], 1, 1))
    checks.shape("bias", bias, (weight.shape[0],))
    checks.same([("h", h), ("weight", weight), ("bias", bias)])
    return lookup("reconstruct", backend, h.device)(h, weight, bias, scale)


def fuse(parts: Sequence[Tensor], weight: Tensor, bias: Tensor, *, backend: str = "auto") -> Tensor:
    """conv1x1(concat(parts), weight, bias), without a concat buffer in the fused backends."""
    parts = list(parts)
    if not parts:
        raise ValueError("parts: expected at least one tensor")
    for i, p in enumerate(parts):
        checks.tensor(f"parts[{i}]", p, 4)
        if p.shape[0] != parts[0].shape[0] or p.shape[2:] != parts[0].shape[2:]:
            raise ValueError(f"parts[{i}]: shape {tuple(p.shape)} does not match parts[0] {tuple(parts[0].shape)} "
                             "in batch and spatial size")
    checks.tensor("weight", weight, 4)
    checks.tensor("bias", bias, 1)
    parts, weight, bias = _amp(parts, weight, bias)
    checks.shape("weight", weight, (weight.shape[0], sum(p.shape[1] for p in parts), 1, 1))
    checks.shape("bias", bias, (weight.shape[0],))
    checks.same([(f"parts[{i}]", p) for i, p in enumerate(parts)] + [("weight", weight), ("bias", bias)])
    return lookup("fuse", backend, parts[0].device)(parts, weight, bias)


def channel_attention(x: Tensor, f: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor,
                      *, backend: str = "auto") -> Tensor:
    """x + f * sigmoid(w2 relu(w1 mean_hw(f) + b1) + b2): channel attention with the local residual."""
    checks.tensor("x", x, 4)
    checks.tensor("f", f, 4)
    checks.shape("f", f, x.shape)
    c = x.shape[1]
    checks.tensor("w1", w1, 2)
    r = w1.shape[0]
    checks.shape("w1", w1, (r, c))
    checks.shape("b1", checks.tensor("b1", b1, 1), (r,))
    checks.shape("w2", checks.tensor("w2", w2, 2), (c, r))
    checks.shape("b2", checks.tensor("b2", b2, 1), (c,))
    x, f, w1, b1, w2, b2 = _amp(x, f, w1, b1, w2, b2)
    checks.same([("x", x), ("f", f), ("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2)])
    return lookup("channel_attention", backend, x.device)(x, f, w1, b1, w2, b2)


def add_noise(x: Tensor, sigma, seed: int | None = None, clip: bool = False, *, backend: str = "auto") -> Tensor:
    """x + sigma/255 * N(0, 1), seeded; sigma on the 0-255 scale, a number or one per sample."""
    checks.tensor("x", x)
    if x.dim() == 0:
        raise ValueError("x: expected a batch [N, ...], got a 0-D tensor")
    return lookup("add_noise", backend, x.device)(x, sigma, seed, clip)
