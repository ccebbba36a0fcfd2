"""reconstruct on the C++ extension (csrc/reconstruct.cpp, csrc/cuda/reconstruct.cu); fakes and autograd in
op_wiring."""
import torch

from ..op_wiring import wire
from ..ops.reconstruct import CPP_FAKES
from ..registry import register

_ops = torch.ops.mdrn_fast
wire("mdrn_fast", "reconstruct", fakes=CPP_FAKES)


@register("reconstruct", "cpu")
@register("reconstruct", "cuda")
def reconstruct(h, weight, bias, scale):
    return _ops.reconstruct(h, weight, bias, int(scale))
