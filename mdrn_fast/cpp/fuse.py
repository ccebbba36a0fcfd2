"""fuse on the C++ extension (csrc/fuse.cpp): fake impl and autograd; no concat buffer either way."""
import torch

from ..registry import register

_ops = torch.ops.mdrn_fast


@torch.library.register_fake("mdrn_fast::fuse")
def _fuse_fake(parts, weight, bias):
    p = parts[0]
    return p.new_empty(p.shape[0], weight.shape[0], p.shape[2], p.shape[3])


@torch.library.register_fake("mdrn_fast::fuse_backward")
def _fuse_backward_fake(grad, parts, weight):
    return ([torch.empty_like(p, memory_format=torch.contiguous_format) for p in parts], torch.empty_like(weight),
            weight.new_empty(weight.shape[0]))


def _setup(ctx, inputs, output):
    parts, weight, _ = inputs
    ctx.save_for_backward(weight, *parts)


def _backward(ctx, grad):
    weight, *parts = ctx.saved_tensors
    grad_parts, grad_w, grad_b = _ops.fuse_backward(grad, parts, weight)
    return list(grad_parts), grad_w, grad_b


torch.library.register_autograd("mdrn_fast::fuse", _backward, setup_context=_setup)


@register("fuse", "cpu")
@register("fuse", "cuda")
def fuse(parts, weight, bias):
    return _ops.fuse(list(parts), weight, bias)
