"""channel_attention on the C++ extension (csrc/attention.cpp, csrc/cuda/attention.cu)."""
import torch

from ..op_wiring import wire
from ..ops.attention import CPP_FAKES
from ..registry import register

_ops = torch.ops.mdrn_fast

wire("mdrn_fast", "channel_attention", fakes=CPP_FAKES)


@register("channel_attention", "cpu")
@register("channel_attention", "cuda")
def channel_attention(x, f, w1, b1, w2, b2):
    return _ops.channel_attention(x, f, w1, b1, w2, b2)[0]
