"""The HMDS feature distances on the C++ extension (csrc/distill.cpp, csrc/cuda/distill.cu).

l1 / l2 and FAKD recompute what their backward needs from the saved inputs (which the model keeps alive
anyway) instead of storing full-size intermediates; attention transfer fuses its channel-energy pass and
leaves the small [N, HW] maps to PyTorch.
"""
import torch

from ..reference import at_from_energy
from ..op_wiring import wire
from ..registry import register

_ops = torch.ops.mdrn_fast
wire("mdrn_fast", "lp_distance", "channel_energy", "fakd")


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
