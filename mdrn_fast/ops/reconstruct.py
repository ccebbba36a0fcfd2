"""The reconstruct family: RECONSTRUCT, pixel_shuffle(conv1x1(h, weight, bias), scale), back to full resolution.

The family's contract (see mdrn_fast/ops/epilogue.py for what that holds). Kernels: kernels/reconstruct.py,
csrc/reconstruct.cpp, csrc/cuda/reconstruct.cu.
"""
from __future__ import annotations

from torch import Tensor

from .. import checks, reference
from ..registry import lookup, register
from ._common import amp, dense, keeps_channels_last, like_layout, randn, weight_and_bias_grads

PUBLIC = ("reconstruct",)
register("reconstruct", "torch")(reference.reconstruct)


def reconstruct(h: Tensor, weight: Tensor, bias: Tensor, scale: int, *, backend: str = "auto") -> Tensor:
    """pixel_shuffle(conv1x1(h, weight, bias), scale): back to full resolution."""
    checks.positive_int("scale", scale)
    checks.tensor("h", h, 4)
    checks.tensor("weight", weight, 4)
    checks.tensor("bias", bias, 1)
    h, weight, bias = amp(h, weight, bias)
    if weight.shape[0] % (scale * scale):
        raise ValueError(f"weight: output channels {weight.shape[0]} are not a multiple of scale**2 = {scale * scale}")
    checks.shape("weight", weight, (weight.shape[0], h.shape[1], 1, 1))
    checks.shape("bias", bias, (weight.shape[0],))
    checks.same([("h", h), ("weight", weight), ("bias", bias)])
    return lookup("reconstruct", backend, h.device)(h, weight, bias, scale)


def example(op: str, shape, scale=2, generator=None) -> dict:
    """Inputs whose output is [N, C, H, W] (h at 1/scale)."""
    n, c, h, w = shape
    hs, ws = max(1, h // scale), max(1, w // scale)
    return dict(h=randn(generator, n, c, hs, ws), weight=randn(generator, c * scale * scale, c, 1, 1) / c ** 0.5,
                bias=randn(generator, c * scale * scale) * 0.1, scale=scale)


FAKES = {
    "reconstruct": lambda h, weight, bias, scale: h.new_empty(h.shape[0], weight.shape[0] // (scale * scale),
                                                              h.shape[2] * scale, h.shape[3] * scale),
    "reconstruct_backward": lambda grad, h, weight, scale: (dense(h), *weight_and_bias_grads(weight)),
}
CPP_FAKES = {  # mdrn_fast::reconstruct keeps a channels_last h's layout (csrc/reconstruct.cpp): out and dh
    "reconstruct": lambda h, weight, bias, scale: like_layout(FAKES["reconstruct"](h, weight, bias, scale),
                                                              keeps_channels_last(h)),
    "reconstruct_backward": lambda grad, h, weight, scale: (like_layout(h, keeps_channels_last(h)),
                                                            *weight_and_bias_grads(weight)),
}


def _reconstruct_autograd(ops):
    def setup(ctx, inputs, output):
        h, weight, _, scale = inputs
        ctx.save_for_backward(h, weight)
        ctx.scale = scale

    def backward(ctx, grad):
        return *ops.reconstruct_backward(grad, *ctx.saved_tensors, ctx.scale), None

    return setup, backward


AUTOGRAD = {"reconstruct": _reconstruct_autograd}
