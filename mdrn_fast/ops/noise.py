"""The noise family: ADD_NOISE, x + sigma/255 * N(0, 1), seeded (training inputs; evaluation draws its noise
with the reference on the CPU, so that every device scores the same noisy images).

The family's contract (see mdrn_fast/ops/epilogue.py for what that holds). Kernels: kernels/noise.py,
csrc/noise.cpp, csrc/cuda/noise.cu (the C++ kernels draw the same Philox stream on CPU and CUDA).
"""
from __future__ import annotations

from torch import Tensor

from .. import checks, reference
from ..registry import lookup, register
from ._common import dense, randn

PUBLIC = ("add_noise",)
register("add_noise", "torch")(reference.add_noise)


def add_noise(x: Tensor, sigma, seed: int | None = None, clip: bool = False, *, backend: str = "auto") -> Tensor:
    """x + sigma/255 * N(0, 1), seeded; sigma on the 0-255 scale, a number or one per sample."""
    checks.tensor("x", x)
    if x.dim() == 0:
        raise ValueError("x: expected a batch [N, ...], got a 0-D tensor")
    return lookup("add_noise", backend, x.device)(x, sigma, seed, clip)


def example(op: str, shape, scale=None, generator=None) -> dict:
    return dict(x=randn(generator, *shape).abs().clamp(max=1), sigma=25.0, seed=0)


FAKES = {"add_noise": lambda x, std, seed, clip: dense(x)}
AUTOGRAD = {"add_noise": lambda ops: (None, lambda ctx, grad: (grad, None, None, None))}  # the identity in x
