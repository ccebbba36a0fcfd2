"""The linear steps of an MDRB that follow one another, composed into one (exactly, up to float rounding: a 1x1
convolution after a linear map is one linear map). Both inference plans (mdrn_fast/cpu_plan.py,
mdrn_fast/gpu_plan.py) run the composed weights; this module computes them, in float64.

- body2 and the part of the fusion 1x1 that reads it: one 3x3 convolution, weight W_f0 W_body2 and bias
  W_f0 b_body2 + b_fuse;
- RECONSTRUCT at scale s and the part of the fusion 1x1 that reads its branch: one low-resolution 1x1 whose
  s*s*C outputs are W_fs applied at each sub-pixel (i, j), with bias W_fs b_up at each sub-pixel.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class ComposedBlock:
    body2: tuple[Tensor, Tensor]  # [C, C, 3, 3], [C]: body2 then its share of the fusion, fusion bias included
    ups: list[tuple[Tensor, Tensor]]  # per scale: [s, s, C_in, C] (sub-pixel, input, output), [s, s, C]


def compose_block(blk) -> ComposedBlock:
    """The composed weights of one MDRB (float64, on the parameters' device)."""
    c = blk.body1.weight.shape[0]
    wf = blk.fuse.weight.detach().double()[:, :, 0, 0].split(c, dim=1)  # the fusion 1x1, one [C, C] per part
    w2 = torch.einsum("oc,cikl->oikl", wf[0], blk.body2.weight.detach().double())
    b2 = wf[0] @ blk.body2.bias.detach().double() + blk.fuse.bias.detach().double()
    ups = []
    for k, (s, up) in enumerate(zip(blk.scales, blk.up)):
        wu = up.weight.detach().double()[:, :, 0, 0].view(c, s, s, -1)  # output channels (c, i, j) of reconstruct
        bu = up.bias.detach().double().view(c, s, s)
        ups.append((torch.einsum("oc,cijk->ijko", wf[k + 1], wu), torch.einsum("oc,cij->ijo", wf[k + 1], bu)))
    return ComposedBlock((w2, b2), ups)
