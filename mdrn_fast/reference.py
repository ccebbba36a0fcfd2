"""Pure-PyTorch reference of every op in docs/DESIGN.md section 4 and of the distillation distances of section 3:
the "torch" backend and the truth.

Tests and benchmarks import these functions, so the baseline can never drift from what is tested.
Conv-like ops take conv-shaped weights ([C_out, C_in, kh, kw]) so that they read as the formula.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

LEAKY_SLOPE = 0.2


def bias_lrelu(t: Tensor, bias: Tensor, slope: float = LEAKY_SLOPE) -> Tensor:
    """lrelu(t + bias), bias broadcast over channels (dim 1)."""
    return F.leaky_relu(t + bias.view(1, -1, 1, 1), slope)


def add_residual(t: Tensor, r: Tensor) -> Tensor:
    """t + r."""
    return t + r


def conv3x3(x: Tensor, weight: Tensor, bias: Tensor, slope: float | None = None,
            residual: Tensor | None = None) -> Tensor:
    """lrelu?(conv2d(x, weight, bias, padding=1)) + residual?, weight [C_out, C_in, 3, 3]: every 3x3 of MDRN."""
    out = F.conv2d(x, weight, bias, padding=1)
    if slope is not None:
        out = F.leaky_relu(out, slope)
    return out if residual is None else out + residual


def degrade(x: Tensor, weight: Tensor, bias: Tensor, scale: int, slope: float = LEAKY_SLOPE) -> Tensor:
    """DEGRADE: lrelu(conv2d(x, weight, bias, stride=scale)), weight [C_out, C_in, scale, scale]."""
    return F.leaky_relu(F.conv2d(x, weight, bias, stride=scale), slope)


def reconstruct(h: Tensor, weight: Tensor, bias: Tensor, scale: int) -> Tensor:
    """RECONSTRUCT: pixel_shuffle(conv1x1(h), scale), weight [C*scale*scale, C_in, 1, 1]."""
    return F.pixel_shuffle(F.conv2d(h, weight, bias), scale)


def fuse(parts: Sequence[Tensor], weight: Tensor, bias: Tensor) -> Tensor:
    """FUSE: conv1x1(concat(parts, dim=1)), weight [C_out, sum C_i, 1, 1]."""
    return F.conv2d(torch.cat(list(parts), dim=1), weight, bias)


def channel_attention(x: Tensor, f: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) -> Tensor:
    """x + f * sigmoid(w2 @ relu(w1 @ mean_hw(f) + b1) + b2); w1 [C/r, C], w2 [C, C/r]."""
    pooled = f.mean(dim=(2, 3))
    a = torch.sigmoid(F.linear(F.relu(F.linear(pooled, w1, b1)), w2, b2))
    return x + f * a[:, :, None, None]


def noise_std(sigma, x: Tensor) -> Tensor:
    """sigma (0-255 scale; a number or one per sample) as a [N, 1, ...] std on the [0, 1] scale."""
    s = torch.as_tensor(sigma, dtype=torch.float32, device=x.device)
    if s.dim() == 0:
        s = s.expand(x.shape[0])
    if s.shape != (x.shape[0],):
        raise ValueError(f"sigma: expected a number or a tensor of shape [{x.shape[0]}], got {tuple(s.shape)}")
    return (s / 255.0).view(-1, *([1] * (x.dim() - 1)))


def add_noise(x: Tensor, sigma, seed: int | None = None, clip: bool = False) -> Tensor:
    """x + sigma/255 * randn_like(x); seeded with a local generator when seed is given."""
    gen = None
    if seed is not None:
        gen = torch.Generator(device=x.device)
        gen.manual_seed(int(seed))
    n = torch.randn(x.shape, generator=gen, device=x.device, dtype=torch.float32)
    y = (x.float() + noise_std(sigma, x) * n).to(x.dtype)
    return y.clamp(0.0, 1.0) if clip else y


# Feature-distillation distances (docs/DESIGN.md section 3)

EPS = 1e-12  # as F.normalize


def l1(fs: Tensor, ft: Tensor) -> Tensor:
    return (fs - ft).abs().mean()


def l2(fs: Tensor, ft: Tensor) -> Tensor:
    return (fs - ft).square().mean()


def _wide(f: Tensor) -> Tensor:
    """float16/bfloat16 computed in float32; float32/float64 as they are."""
    return f.float() if f.dtype in (torch.float16, torch.bfloat16) else f


def channel_energy(f: Tensor) -> Tensor:
    """[N, HW] mean over channels of f^2: the only full-size work of attention transfer (fused backends
    compute it, and its gradient, in one pass over f)."""
    return _wide(f).square().mean(1).flatten(1)


def at_from_energy(es: Tensor, et: Tensor) -> Tensor:
    """The rest of attention transfer, on the small [N, HW] maps: normalize, squared distance, batch mean."""
    diff = F.normalize(es, dim=1, eps=EPS) - F.normalize(et, dim=1, eps=EPS)
    return diff.square().sum(1).mean()


def at(fs: Tensor, ft: Tensor) -> Tensor:
    return at_from_energy(channel_energy(fs), channel_energy(ft))


def affinity(f: Tensor) -> Tensor:
    """[N, HW, HW] cosine similarities between the positions of f [N, C, H, W]."""
    u = F.normalize(_wide(f).flatten(2), dim=1, eps=EPS)
    return u.transpose(1, 2) @ u


def fakd(fs: Tensor, ft: Tensor) -> Tensor:
    return (affinity(fs) - affinity(ft)).abs().mean()
