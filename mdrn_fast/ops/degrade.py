"""The degrade family: DEGRADE, lrelu(conv2d(x, weight, bias, stride=scale)), a learned scale-fold downscale.

The family's contract (see mdrn_fast/ops/epilogue.py for what that holds). Kernels: kernels/degrade.py,
csrc/degrade.cpp, csrc/cuda/degrade.cu.
"""
from __future__ import annotations

from torch import Tensor

from .. import checks, reference
from ..registry import lookup, register
from ._common import amp, dense, keeps_channels_last, like_layout, randn, weight_and_bias_grads

PUBLIC = ("degrade",)
register("degrade", "torch")(reference.degrade)


def degrade(x: Tensor, weight: Tensor, bias: Tensor, scale: int, slope: float = reference.LEAKY_SLOPE,
            *, backend: str = "auto") -> Tensor:
    """lrelu(conv2d(x, weight, bias, stride=scale)): learned scale-fold downscale."""
    checks.positive_int("scale", scale)
    checks.tensor("x", x, 4)
    checks.tensor("weight", weight, 4)
    checks.tensor("bias", bias, 1)
    x, weight, bias = amp(x, weight, bias)
    checks.shape("weight", weight, (weight.shape[0], x.shape[1], scale, scale))
    checks.shape("bias", bias, (weight.shape[0],))
    if x.shape[2] < scale or x.shape[3] < scale:
        raise ValueError(f"x: spatial size {tuple(x.shape[2:])} is smaller than scale {scale}")
    checks.same([("x", x), ("weight", weight), ("bias", bias)])
    return lookup("degrade", backend, x.device)(x, weight, bias, scale, slope)


def example(op: str, shape, scale=2, generator=None) -> dict:
    n, c, h, w = shape
    k = 1.0 / (c * scale * scale) ** 0.5  # keeps outputs O(1), like PyTorch's default init
    return dict(x=randn(generator, n, c, h, w), weight=randn(generator, c, c, scale, scale) * k,
                bias=randn(generator, c) * k, scale=scale, slope=0.2)


FAKES = {
    "degrade": lambda x, weight, bias, scale, slope: x.new_empty(x.shape[0], weight.shape[0], x.shape[2] // scale,
                                                                 x.shape[3] // scale),
    "degrade_backward": lambda grad, out, x, weight, scale, slope: (dense(x), *weight_and_bias_grads(weight)),
}
CPP_FAKES = {  # mdrn_fast::degrade keeps a channels_last x's layout (csrc/degrade.cpp): out and dx
    "degrade": lambda x, weight, bias, scale, slope: like_layout(FAKES["degrade"](x, weight, bias, scale, slope),
                                                                 keeps_channels_last(x)),
    "degrade_backward": lambda grad, out, x, weight, scale, slope: (like_layout(x, keeps_channels_last(x)),
                                                                    *weight_and_bias_grads(weight)),
}


def _degrade_autograd(ops):
    def setup(ctx, inputs, output):
        x, weight, _, scale, slope = inputs
        ctx.save_for_backward(output, x, weight)  # the patches of x are recomputed, not saved
        ctx.scale, ctx.slope = scale, slope

    def backward(ctx, grad):
        return *ops.degrade_backward(grad, *ctx.saved_tensors, ctx.scale, ctx.slope), None, None

    return setup, backward


AUTOGRAD = {"degrade": _degrade_autograd}
