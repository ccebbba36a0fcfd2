"""add_noise on the C++ extension (csrc/noise.cpp, csrc/cuda/noise.cu): counter-based Philox, seeded."""
import torch

from ..op_wiring import wire
from ..reference import noise_std
from ..registry import register

_ops = torch.ops.mdrn_fast
wire("mdrn_fast", "add_noise")


def draw_seed() -> int:
    """A seed from torch's default generator, so that torch.manual_seed makes unseeded calls repeatable."""
    return int(torch.randint(0, 2**62, (1,)).item())


@register("add_noise", "cpu")
@register("add_noise", "cuda")
def add_noise(x, sigma, seed=None, clip=False):
    std = noise_std(sigma, x).reshape(-1)
    return _ops.add_noise(x, std, draw_seed() if seed is None else int(seed), bool(clip))
