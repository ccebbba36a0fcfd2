"""fuse on the C++ extension (csrc/fuse.cpp): no concat buffer either way, channels_last kept; fakes and autograd
in op_wiring (this backend's own fakes: ops.fuse.CPP_FAKES)."""
import torch

from ..op_wiring import wire
from ..ops.fuse import CPP_FAKES
from ..registry import register

_ops = torch.ops.mdrn_fast
wire("mdrn_fast", "fuse", fakes=CPP_FAKES)


@register("fuse", "cpu")
@register("fuse", "cuda")
def fuse(parts, weight, bias):
    return _ops.fuse(list(parts), weight, bias)
