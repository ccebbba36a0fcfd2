"""degrade on the C++ extension (csrc/degrade.cpp, csrc/cuda/degrade.cu): fake impl and autograd."""
import torch

from ..registry import register

_ops = torch.ops.mdrn_fast


@torch.library.register_fake("mdrn_fast::degrade")
def _degrade_fake(x, weight, bias, scale, slope):
    return x.new_empty(x.shape[0], weight.shape[0], x.shape[2] // scale, x.shape[3] // scale)


@torch.library.register_fake("mdrn_fast::degrade_backward")
def _degrade_backward_fake(grad, out, x, weight, scale, slope):
    return (torch.empty_like(x, memory_format=torch.contiguous_format), torch.empty_like(weight),
            weight.new_empty(weight.shape[0]))


def _setup(ctx, inputs, output):
    x, weight, _, scale, slope = inputs
    ctx.save_for_backward(output, x, weight)  # the patches of x are recomputed, not saved
    ctx.scale, ctx.slope = scale, slope


def _backward(ctx, grad):
    out, x, weight = ctx.saved_tensors
    grad_x, grad_w, grad_b = _ops.degrade_backward(grad, out, x, weight, ctx.scale, ctx.slope)
    return grad_x, grad_w, grad_b, None, None


torch.library.register_autograd("mdrn_fast::degrade", _backward, setup_context=_setup)


@register("degrade", "cpu")
@register("degrade", "cuda")
def degrade(x, weight, bias, scale, slope):
    return _ops.degrade(x, weight, bias, int(scale), float(slope))
