"""Scalars for Triton kernels at the precision of the tensors they meet.

Triton passes a Python float to a kernel as fp32, and the epilogues compute in fp32: right for fp16, bf16 and
fp32 tensors, but fp64 tensors need fp64 math and the scalar's full 53 bits (a LeakyReLU slope of 0.2 rounded
to fp32 is off by 3e-9). So the scalar travels as two fp32 halves, hi + lo, which an fp64 kernel adds back
(exact to about 48 bits) and an fp32 kernel reads as hi.
"""
from __future__ import annotations

import numpy as np
import torch
import triton.language as tl


def split(x: float) -> tuple[float, float]:
    """(hi, lo): hi = fp32(x), lo = fp32(x - hi)."""
    hi = float(np.float32(x))
    return hi, float(np.float32(x - hi))


def compute_type(dtype: torch.dtype):
    """The Triton type the epilogues compute in for tensors of ``dtype``: fp64 for fp64, fp32 otherwise."""
    return tl.float64 if dtype == torch.float64 else tl.float32
