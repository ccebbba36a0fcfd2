"""add_noise in Triton: y = x + std[n] * z, z ~ N(0, 1) from Triton's Philox (tl.randn keyed by the seed,
counter = element index), optional clip to [0, 1]; the gradient with respect to x is the identity."""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from mdrn_fast.reference import noise_std
from mdrn_fast.op_wiring import wire
from mdrn_fast.registry import register

BLOCK = 1024


@triton.jit
def _add_noise_kernel(x_ptr, std_ptr, out_ptr, total, per_sample, seed, CLIP: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)  # same stream as 32-bit below 2^32
    mask = offs < total
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    std = tl.load(std_ptr + offs // per_sample, mask=mask, other=0.0)
    y = x + std * tl.randn(seed, offs)
    if CLIP:
        y = tl.minimum(tl.maximum(y, 0.0), 1.0)
    tl.store(out_ptr + offs, y.to(out_ptr.dtype.element_ty), mask=mask)


@torch.library.custom_op("mdrn_fast_triton::add_noise", mutates_args=())
def _add_noise(x: torch.Tensor, std: torch.Tensor, seed: int, clip: bool) -> torch.Tensor:
    x = x.contiguous()
    out = torch.empty_like(x)
    total = x.numel()
    _add_noise_kernel[(triton.cdiv(total, BLOCK),)](x, std.contiguous(), out, total, total // x.shape[0], seed,
                                                     CLIP=clip, BLOCK=BLOCK)
    return out


wire("mdrn_fast_triton", "add_noise")


@register("add_noise", "triton")
def add_noise(x, sigma, seed=None, clip=False):
    if seed is None:  # from torch's generator, so that torch.manual_seed makes unseeded calls repeatable
        seed = int(torch.randint(0, 2**31 - 1, (1,)).item())
    return _add_noise(x, noise_std(sigma, x).reshape(-1), int(seed) % (2**31 - 1), bool(clip))
