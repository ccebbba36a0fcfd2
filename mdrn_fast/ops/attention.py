"""The attention family: CHANNEL_ATTENTION, x + f * sigmoid(w2 relu(w1 mean_hw(f) + b1) + b2), channel
attention with the block's local residual.

The family's contract (see mdrn_fast/ops/epilogue.py for what that holds). The fused ops return the pooled
means as a second output (opmath dtype) for the backward. Kernels: kernels/attention.py, csrc/attention.cpp,
csrc/cuda/attention.cu.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .. import checks, reference
from ..registry import lookup, register
from ._common import amp, dense, keeps_channels_last, like_layout, opmath, randn

PUBLIC = ("channel_attention",)
register("channel_attention", "torch")(reference.channel_attention)


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
    x, f, w1, b1, w2, b2 = amp(x, f, w1, b1, w2, b2)
    checks.same([("x", x), ("f", f), ("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2)])
    return lookup("channel_attention", backend, x.device)(x, f, w1, b1, w2, b2)


def example(op: str, shape, scale=None, generator=None) -> dict:
    n, c, h, w = shape
    r = max(1, c // 4)
    return dict(x=randn(generator, n, c, h, w), f=randn(generator, n, c, h, w), w1=randn(generator, r, c) / c ** 0.5,
                b1=randn(generator, r) * 0.1, w2=randn(generator, c, r) / r ** 0.5, b2=randn(generator, c) * 0.1)


FAKES = {
    "channel_attention": lambda x, f, w1, b1, w2, b2: (  # (out, the pooled means it saves for the backward)
        dense(x), x.new_empty(x.shape[0], x.shape[1], dtype=opmath(x.dtype))),
    "channel_attention_backward": lambda grad, f, pooled, w1, b1, w2, b2: (
        dense(f), *(torch.empty_like(t) for t in (w1, b1, w2, b2))),
}


def attention_channels_last(x, f) -> bool:
    """The C++ channel_attention's layout rule (csrc/attention.cpp): keeps_channels_last(x) and f channels_last
    too keep channels_last (the backward asks it of (f, grad))."""
    return keeps_channels_last(x) and f.is_contiguous(memory_format=torch.channels_last)


CPP_FAKES = {
    "channel_attention": lambda x, f, w1, b1, w2, b2: (
        like_layout(x, attention_channels_last(x, f)), x.new_empty(x.shape[0], x.shape[1], dtype=opmath(x.dtype))),
    "channel_attention_backward": lambda grad, f, pooled, w1, b1, w2, b2: (
        like_layout(f, attention_channels_last(f, grad)), *(torch.empty_like(t) for t in (w1, b1, w2, b2))),
}


def _attention_autograd(ops):
    def setup(ctx, inputs, output):
        _, f, w1, b1, w2, b2 = inputs
        ctx.save_for_backward(f, output[1], w1, b1, w2, b2)  # output[1]: the pooled means

    def backward(ctx, grad, _grad_pooled):
        return grad, *ops.channel_attention_backward(grad, *ctx.saved_tensors)  # d out / d x = 1: no copy

    return setup, backward


AUTOGRAD = {"channel_attention": _attention_autograd}
