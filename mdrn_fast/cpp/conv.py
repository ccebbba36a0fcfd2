"""conv3x3 on the C++ extension (csrc/conv.cpp): the vendor convolution with its epilogue (composite: ATen's own
autograd and tracing)."""
import torch

from ..registry import register

_ops = torch.ops.mdrn_fast


@register("conv3x3", "cpu")
@register("conv3x3", "cuda")
def conv3x3(x, weight, bias, slope, residual):
    return _ops.conv3x3.default(x, weight, bias, None if slope is None else float(slope), residual)
