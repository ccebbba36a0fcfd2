"""channel_attention on the C++ extension (csrc/attention.cpp, csrc/cuda/attention.cu): fake impl, autograd."""
import torch

from ..registry import register

_ops = torch.ops.mdrn_fast


def _acc(dtype):
    return torch.float64 if dtype == torch.float64 else torch.float32


@torch.library.register_fake("mdrn_fast::channel_attention")
def _attention_fake(x, f, w1, b1, w2, b2):
    return (torch.empty_like(x, memory_format=torch.contiguous_format),
            x.new_empty(x.shape[0], x.shape[1], dtype=_acc(x.dtype)))


@torch.library.register_fake("mdrn_fast::channel_attention_backward")
def _attention_backward_fake(grad, f, pooled, w1, b1, w2, b2):
    return (torch.empty_like(f, memory_format=torch.contiguous_format), torch.empty_like(w1), torch.empty_like(b1),
            torch.empty_like(w2), torch.empty_like(b2))


def _setup(ctx, inputs, output):
    _, f, w1, b1, w2, b2 = inputs
    ctx.save_for_backward(f, output[1], w1, b1, w2, b2)


def _backward(ctx, grad, _grad_pooled):
    f, pooled, w1, b1, w2, b2 = ctx.saved_tensors
    grad_f, gw1, gb1, gw2, gb2 = _ops.channel_attention_backward(grad, f, pooled, w1, b1, w2, b2)
    return grad, grad_f, gw1, gb1, gw2, gb2  # d out / d x is the identity: no copy


torch.library.register_autograd("mdrn_fast::channel_attention", _backward, setup_context=_setup)


@register("channel_attention", "cpu")
@register("channel_attention", "cuda")
def channel_attention(x, f, w1, b1, w2, b2):
    return _ops.channel_attention(x, f, w1, b1, w2, b2)[0]
