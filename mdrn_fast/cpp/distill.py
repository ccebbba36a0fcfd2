"""The HMDS feature distances on the C++ extension (csrc/distill.cpp): fake impls, autograd, registration.

l1 / l2 and FAKD recompute what their backward needs from the saved inputs (which the model keeps alive
anyway) instead of storing full-size intermediates; attention transfer fuses its channel-energy pass and
leaves the small [N, HW] maps to PyTorch.
"""
import torch

from ..distill.losses import at_from_energy
from ..registry import register

_ops = torch.ops.mdrn_fast


def _opmath(dtype):
    return torch.float64 if dtype == torch.float64 else torch.float32


@torch.library.register_fake("mdrn_fast::lp_distance")
def _lp_fake(fs, ft, square):
    return fs.new_empty(())


@torch.library.register_fake("mdrn_fast::lp_distance_backward")
def _lp_backward_fake(grad, fs, ft, square):
    return torch.empty_like(fs, memory_format=torch.contiguous_format)


@torch.library.register_fake("mdrn_fast::channel_energy")
def _energy_fake(f):
    return f.new_empty((f.shape[0], f.shape[2] * f.shape[3]), dtype=_opmath(f.dtype))


@torch.library.register_fake("mdrn_fast::channel_energy_backward")
def _energy_backward_fake(grad, f):
    return torch.empty_like(f, memory_format=torch.contiguous_format)


@torch.library.register_fake("mdrn_fast::fakd")
def _fakd_fake(fs, ft):
    return fs.new_empty(())


@torch.library.register_fake("mdrn_fast::fakd_backward")
def _fakd_backward_fake(grad, fs, ft):
    return torch.empty_like(fs), torch.empty_like(ft)


def _save_inputs(ctx, inputs, output):
    ctx.save_for_backward(*(t for t in inputs if isinstance(t, torch.Tensor)))
    ctx.square = inputs[2] if len(inputs) == 3 else None


def _lp_backward(ctx, grad):
    fs, ft = ctx.saved_tensors
    d = _ops.lp_distance_backward(grad, fs, ft, ctx.square)
    return (d if ctx.needs_input_grad[0] else None), (-d if ctx.needs_input_grad[1] else None), None


def _energy_backward(ctx, grad):
    (f,) = ctx.saved_tensors
    return _ops.channel_energy_backward(grad, f)


def _fakd_backward(ctx, grad):
    fs, ft = ctx.saved_tensors
    return _ops.fakd_backward(grad, fs, ft)


torch.library.register_autograd("mdrn_fast::lp_distance", _lp_backward, setup_context=_save_inputs)
torch.library.register_autograd("mdrn_fast::channel_energy", _energy_backward, setup_context=_save_inputs)
torch.library.register_autograd("mdrn_fast::fakd", _fakd_backward, setup_context=_save_inputs)


@register("distill_l1", "cpu")
@register("distill_l1", "cuda")
def l1(fs, ft):
    return _ops.lp_distance(fs, ft, False)


@register("distill_l2", "cpu")
@register("distill_l2", "cuda")
def l2(fs, ft):
    return _ops.lp_distance(fs, ft, True)


@register("distill_at", "cpu")
@register("distill_at", "cuda")
def at(fs, ft):
    return at_from_energy(_ops.channel_energy(fs), _ops.channel_energy(ft))


@register("distill_fakd", "cpu")
@register("distill_fakd", "cuda")
def fakd(fs, ft):
    return _ops.fakd(fs, ft)
