"""The epilogue family: BIAS_LRELU, lrelu(t + bias) after a bias-free conv, and ADD_RESIDUAL, t + r.

This module is the family's contract: the public functions and their checks, example inputs (tests and the
benchmark), the fakes of the fused ops and their backward formulas (mdrn_fast.op_wiring registers them for
each fused backend). Kernels: kernels/epilogue.py, csrc/epilogue.cpp, csrc/cuda/epilogue.cu.
"""
from __future__ import annotations

from torch import Tensor

from .. import checks, reference
from ..registry import lookup, register
from ._common import amp, dense, keeps_channels_last, like_layout, randn

PUBLIC = ("bias_lrelu", "add_residual")
for _op in PUBLIC:
    register(_op, "torch")(getattr(reference, _op))


def bias_lrelu(t: Tensor, bias: Tensor, slope: float = reference.LEAKY_SLOPE, *, backend: str = "auto") -> Tensor:
    """lrelu(t + bias): the epilogue of a bias-free conv."""
    checks.tensor("t", t, 4)
    checks.tensor("bias", bias, 1)
    t, bias = amp(t, bias)
    checks.shape("bias", bias, (t.shape[1],))
    checks.same([("t", t), ("bias", bias)])
    return lookup("bias_lrelu", backend, t.device)(t, bias, slope)


def add_residual(t: Tensor, r: Tensor, *, backend: str = "auto") -> Tensor:
    """t + r: the residual epilogue."""
    checks.tensor("t", t)
    checks.tensor("r", r)
    t, r = amp(t, r)
    checks.shape("r", r, t.shape)
    checks.same([("t", t), ("r", r)])
    return lookup("add_residual", backend, t.device)(t, r)


def example(op: str, shape, scale=None, generator=None) -> dict:
    n, c, h, w = shape
    if op == "bias_lrelu":
        return dict(t=randn(generator, n, c, h, w), bias=randn(generator, c), slope=0.2)
    return dict(t=randn(generator, n, c, h, w), r=randn(generator, n, c, h, w))


FAKES = {
    "bias_lrelu": lambda t, bias, slope: dense(t),
    "bias_lrelu_backward": lambda grad, out, slope: (dense(grad), grad.new_empty(grad.shape[1])),
}


CPP_FAKES = {  # mdrn_fast::bias_lrelu keeps channels_last (csrc/epilogue.cpp): the output, then the saved output's
    "bias_lrelu": lambda t, bias, slope: like_layout(t, keeps_channels_last(t)),
    "bias_lrelu_backward": lambda grad, out, slope: (like_layout(grad, keeps_channels_last(out)),
                                                     grad.new_empty(grad.shape[1])),
}


def _bias_lrelu_autograd(ops):
    def setup(ctx, inputs, output):
        ctx.save_for_backward(output)  # the mask comes from the sign of the output
        ctx.slope = inputs[2]

    def backward(ctx, grad):
        return *ops.bias_lrelu_backward(grad, *ctx.saved_tensors, ctx.slope), None

    return setup, backward


AUTOGRAD = {
    "bias_lrelu": _bias_lrelu_autograd,
    "add_residual": lambda ops: (None, lambda ctx, grad: (grad, grad)),
}
