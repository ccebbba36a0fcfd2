"""FAKD on the C++ extension (csrc/distill.cpp): tiled, no HW x HW matrices; fake impl and autograd."""
import torch

from ..registry import register

_ops = torch.ops.mdrn_fast


@torch.library.register_fake("mdrn_fast::fakd")
def _fakd_fake(fs, ft):
    return fs.new_empty(())


@torch.library.register_fake("mdrn_fast::fakd_backward")
def _fakd_backward_fake(grad, fs, ft):
    return torch.empty_like(fs), torch.empty_like(ft)


def _setup(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _backward(ctx, grad):
    fs, ft = ctx.saved_tensors
    return _ops.fakd_backward(grad, fs, ft)


torch.library.register_autograd("mdrn_fast::fakd", _backward, setup_context=_setup)


@register("distill_fakd", "cpu")
@register("distill_fakd", "cuda")
def fakd(fs, ft):
    return _ops.fakd(fs, ft)
