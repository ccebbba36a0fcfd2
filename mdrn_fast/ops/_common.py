"""What the op families share: autocast handling for the fused kernels and the shapes of their fakes."""
from __future__ import annotations

import torch


def amp(*tensors):
    """Under torch.autocast, run in the autocast dtype (the fused kernels take one dtype for all inputs)."""
    first = tensors[0][0] if isinstance(tensors[0], list) else tensors[0]
    kind = first.device.type
    if not torch.is_autocast_enabled(kind):
        return tensors
    dt = torch.get_autocast_dtype(kind)
    return tuple([p.to(dt) for p in t] if isinstance(t, list) else t.to(dt) for t in tensors)


def opmath(dtype: torch.dtype) -> torch.dtype:
    """The accumulation dtype of the kernels: float64 for float64, float32 otherwise."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def dense(t):
    """An empty tensor like t, NCHW-contiguous: what the fused kernels return."""
    return torch.empty_like(t, memory_format=torch.contiguous_format)


def keeps_channels_last(t) -> bool:
    """The C++ ops' layout rule (keeps_channels_last in csrc/common.h): a 4-D tensor that is channels_last and not
    also NCHW-contiguous is read in place and gives channels_last results; anything else runs in NCHW."""
    return t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)


def like_layout(t, keep_channels_last: bool):
    """An empty tensor like t: channels_last when keep_channels_last, else NCHW-contiguous."""
    return torch.empty_like(t, memory_format=torch.channels_last) if keep_channels_last else dense(t)


def weight_and_bias_grads(weight):
    return torch.empty_like(weight), weight.new_empty(weight.shape[0])


def randn(generator, *shape):
    return torch.randn(*shape, generator=generator)
