"""reconstruct on the C++ extension (csrc/reconstruct.cpp, csrc/cuda/reconstruct.cu): fake impl and autograd."""
import torch

from ..registry import register

_ops = torch.ops.mdrn_fast


@torch.library.register_fake("mdrn_fast::reconstruct")
def _reconstruct_fake(h, weight, bias, scale):
    return h.new_empty(h.shape[0], weight.shape[0] // (scale * scale), h.shape[2] * scale, h.shape[3] * scale)


@torch.library.register_fake("mdrn_fast::reconstruct_backward")
def _reconstruct_backward_fake(grad, h, weight, scale):
    return (torch.empty_like(h, memory_format=torch.contiguous_format), torch.empty_like(weight),
            weight.new_empty(weight.shape[0]))


def _setup(ctx, inputs, output):
    h, weight, _, scale = inputs
    ctx.save_for_backward(h, weight)
    ctx.scale = scale


def _backward(ctx, grad):
    h, weight = ctx.saved_tensors
    grad_h, grad_w, grad_b = _ops.reconstruct_backward(grad, h, weight, ctx.scale)
    return grad_h, grad_w, grad_b, None


torch.library.register_autograd("mdrn_fast::reconstruct", _backward, setup_context=_setup)


@register("reconstruct", "cpu")
@register("reconstruct", "cuda")
def reconstruct(h, weight, bias, scale):
    return _ops.reconstruct(h, weight, bias, int(scale))
