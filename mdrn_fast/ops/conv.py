"""The conv family: CONV3X3, lrelu?(conv2d(x, weight, bias, padding=1)) + residual?, every 3x3 convolution of MDRN
with its epilogue.

The family's contract (see mdrn_fast/ops/epilogue.py for what that holds). Kernels: kernels/conv.py (an NHWC
implicit GEMM of the project's own, on tensor cores); csrc/conv.cpp (the vendor convolution, cuDNN or oneDNN,
with its epilogue: the C++ backends keep the 3x3s with the vendor libraries).
"""
from __future__ import annotations

import torch
from torch import Tensor

from .. import checks, reference
from ..registry import lookup, register
from ._common import amp, randn, weight_and_bias_grads

PUBLIC = ("conv3x3",)
register("conv3x3", "torch")(reference.conv3x3)


def conv3x3(x: Tensor, weight: Tensor, bias: Tensor, slope: float | None = None, residual: Tensor | None = None,
            *, backend: str = "auto") -> Tensor:
    """lrelu(conv2d(x, weight, bias, padding=1)) when ``slope`` is given, plus ``residual`` when given (one or the
    other: the network never needs both). The Triton backend returns channels-last memory."""
    checks.tensor("x", x, 4)
    checks.tensor("weight", weight, 4)
    checks.tensor("bias", bias, 1)
    if slope is not None and residual is not None:
        raise ValueError("slope and residual: give one or the other (lrelu(conv) or conv + residual)")
    if slope is not None and (isinstance(slope, bool) or not isinstance(slope, (int, float)) or slope < 0):
        raise ValueError(f"slope: expected a number >= 0 or None, got {slope!r}")
    tensors = [x, weight, bias] + ([residual] if residual is not None else [])
    x, weight, bias, *rest = amp(*tensors)
    checks.shape("weight", weight, (weight.shape[0], x.shape[1], 3, 3))
    checks.shape("bias", bias, (weight.shape[0],))
    named = [("x", x), ("weight", weight), ("bias", bias)]
    if residual is not None:
        residual = checks.tensor("residual", rest[0], 4)
        checks.shape("residual", residual, (x.shape[0], weight.shape[0], *x.shape[2:]))
        named.append(("residual", residual))
    checks.same(named)
    return lookup("conv3x3", backend, x.device)(x, weight, bias, slope, residual)


def example(op: str, shape, scale=None, generator=None) -> dict:
    """conv3x3 + bias + LeakyReLU from C to C channels, as the first convolution of an MDRB."""
    n, c, h, w = shape
    k = 1.0 / (9 * c) ** 0.5  # PyTorch's default init scale
    return dict(x=randn(generator, n, c, h, w), weight=randn(generator, c, c, 3, 3) * k, bias=randn(generator, c) * k,
                slope=0.2, residual=None)


def _channels_last(*shape, like: Tensor) -> Tensor:
    return torch.empty(shape, dtype=like.dtype, device=like.device, memory_format=torch.channels_last)


FAKES = {
    "conv3x3": lambda x, weight, bias, slope, residual: _channels_last(x.shape[0], weight.shape[0], *x.shape[2:],
                                                                       like=x),
    "conv3x3_backward": lambda grad, out, x, weight, slope: (_channels_last(*x.shape, like=x),
                                                             *weight_and_bias_grads(weight)),
}


def _conv3x3_autograd(ops):
    def setup(ctx, inputs, output):
        x, weight, _, slope, residual = inputs
        ctx.save_for_backward(output, x, weight)  # the LeakyReLU mask comes from the sign of the output
        ctx.slope, ctx.residual = slope, residual is not None

    def backward(ctx, grad):
        grad_x, grad_w, grad_b = ops.conv3x3_backward(grad, *ctx.saved_tensors, ctx.slope)
        return grad_x, grad_w, grad_b, None, grad if ctx.residual else None

    return setup, backward


AUTOGRAD = {"conv3x3": _conv3x3_autograd}
