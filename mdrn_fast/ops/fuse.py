"""The fuse family: FUSE, conv1x1(concat(parts), weight, bias), without a concat buffer in the fused backends.

The family's contract (see mdrn_fast/ops/epilogue.py for what that holds). Kernels: kernels/fuse.py,
csrc/fuse.cpp (CPU and CUDA: a GEMM per part through ATen).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from .. import checks, reference
from ..registry import lookup, register
from ._common import amp, dense, keeps_channels_last, like_layout, randn, weight_and_bias_grads

PUBLIC = ("fuse",)
register("fuse", "torch")(reference.fuse)


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
    parts, weight, bias = amp(parts, weight, bias)
    checks.shape("weight", weight, (weight.shape[0], sum(p.shape[1] for p in parts), 1, 1))
    checks.shape("bias", bias, (weight.shape[0],))
    checks.same([(f"parts[{i}]", p) for i, p in enumerate(parts)] + [("weight", weight), ("bias", bias)])
    return lookup("fuse", backend, parts[0].device)(parts, weight, bias)


def example(op: str, shape, scale=None, generator=None) -> dict:
    """Three parts of C channels, as an MDRB fuses (full resolution and two scales)."""
    n, c, h, w = shape
    parts = [randn(generator, n, c, h, w) for _ in range(3)]
    return dict(parts=parts, weight=randn(generator, c, 3 * c, 1, 1) / (3 * c) ** 0.5,
                bias=randn(generator, c) * 0.1)


FAKES = {
    "fuse": lambda parts, weight, bias: parts[0].new_empty(parts[0].shape[0], weight.shape[0], *parts[0].shape[2:]),
    "fuse_backward": lambda grad, parts, weight: ([dense(p) for p in parts], *weight_and_bias_grads(weight)),
}


def uses_channels_last(parts) -> bool:
    """The C++ fuse's layout rule (csrc/fuse.cpp): keeps_channels_last(parts[0]) and every other part
    channels_last too give a channels_last output and channels_last part gradients, with no layout copies."""
    return keeps_channels_last(parts[0]) and all(p.is_contiguous(memory_format=torch.channels_last) for p in parts)


def _cpp_fuse_fake(parts, weight, bias):
    out = FAKES["fuse"](parts, weight, bias)
    return like_layout(out, uses_channels_last(parts))


def _cpp_fuse_backward_fake(grad, parts, weight):
    keep = uses_channels_last(parts)
    return ([like_layout(p, keep) for p in parts], *weight_and_bias_grads(weight))


CPP_FAKES = {"fuse": _cpp_fuse_fake, "fuse_backward": _cpp_fuse_backward_fake}  # mdrn_fast::fuse's own layouts


def _fuse_autograd(ops):
    def setup(ctx, inputs, output):
        parts, weight, _ = inputs
        ctx.save_for_backward(weight, *parts)

    def backward(ctx, grad):
        weight, *parts = ctx.saved_tensors
        grad_parts, grad_w, grad_b = ops.fuse_backward(grad, parts, weight)
        return list(grad_parts), grad_w, grad_b

    return setup, backward


AUTOGRAD = {"fuse": _fuse_autograd}
