"""A gray model denoising a color image, one channel at a time: what a color photo gets when no color model of
its noise level ships (mdrn_fast.model_choice), and what mdrn_fast.denoise does with a color image and a gray
model.

Two splits: "rgb" denoises R, G and B; "opponent" first turns RGB into an orthonormal luminance/chroma basis
((R+G+B)/sqrt 3, (R-B)/sqrt 2, (R-2G+B)/sqrt 6, chroma shifted to centre on 0.5), which keeps white noise white
and of the same sigma in every channel, so one gray model of that sigma fits all three. Which one the model
choice uses is decided by measurement on BSDS200 (bench/color_fallback.py; README, Photos).
"""
from __future__ import annotations

import math

import torch
from torch import nn

SPLITS = ("rgb", "opponent")
# rows: luminance, red-blue, green-magenta; orthonormal, so the inverse is the transpose
_OPPONENT = torch.tensor([[1 / math.sqrt(3)] * 3,
                          [1 / math.sqrt(2), 0.0, -1 / math.sqrt(2)],
                          [1 / math.sqrt(6), -2 / math.sqrt(6), 1 / math.sqrt(6)]])
_CHROMA_SHIFT = torch.tensor([0.0, 0.5, 0.5])


class GrayOnChannels(nn.Module):
    """A 3-channel denoiser made of one gray model: ``forward(y)`` on [N, 3, H, W] floats in [0, 1]."""

    def __init__(self, gray: nn.Module, split: str = "rgb"):
        super().__init__()
        if split not in SPLITS:
            raise ValueError(f"split {split!r}: expected one of {', '.join(SPLITS)}")
        if getattr(gray, "in_channels", 1) != 1:
            raise ValueError("GrayOnChannels needs a gray (1-channel) model")
        self.gray, self.split = gray, split

    in_channels = 3

    def extra_repr(self) -> str:
        return f"split={self.split!r}"

    def to_channels(self, y: torch.Tensor) -> torch.Tensor:
        if self.split == "rgb":
            return y
        m = _OPPONENT.to(y.device, y.dtype)
        return torch.einsum("ij,njhw->nihw", m, y) + _CHROMA_SHIFT.to(y.device, y.dtype)[:, None, None]

    def from_channels(self, z: torch.Tensor) -> torch.Tensor:
        if self.split == "rgb":
            return z
        m = _OPPONENT.to(z.device, z.dtype)
        return torch.einsum("ji,njhw->nihw", m, z - _CHROMA_SHIFT.to(z.device, z.dtype)[:, None, None])

    def apply(self, y: torch.Tensor, denoise_gray) -> torch.Tensor:
        """``denoise_gray`` ([N, 1, H, W] -> same) on each channel of the split; one channel at a time, so a
        large photo needs no more activation memory than a gray one (mdrn_fast.inference tiles each)."""
        z = self.to_channels(y)
        out = torch.cat([denoise_gray(z[:, c:c + 1].contiguous()) for c in range(z.shape[1])], dim=1)
        return self.from_channels(out)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.apply(y, self.gray)
