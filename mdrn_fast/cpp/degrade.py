"""degrade on the C++ extension (csrc/degrade.cpp, csrc/cuda/degrade.cu); fakes and autograd in op_wiring."""
import torch

from ..op_wiring import wire
from ..ops.degrade import CPP_FAKES
from ..registry import register

_ops = torch.ops.mdrn_fast
wire("mdrn_fast", "degrade", fakes=CPP_FAKES)


@register("degrade", "cpu")
@register("degrade", "cuda")
def degrade(x, weight, bias, scale, slope):
    return _ops.degrade(x, weight, bias, int(scale), float(slope))
