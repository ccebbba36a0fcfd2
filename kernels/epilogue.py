"""Epilogues in Triton: bias + LeakyReLU (forward, and a backward that reduces the bias gradient in the same
pass) and the residual add. Also the LeakyReLU backward used by degrade."""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from mdrn_fast.op_wiring import opmath, wire
from mdrn_fast.registry import register

from ._scalars import compute_type, split

BLOCK = 1024


@triton.jit
def _bias_lrelu_forward_kernel(t_ptr, bias_ptr, out_ptr, HW, C, slope_hi, slope_lo, ACC: tl.constexpr,
                               BLOCK: tl.constexpr):
    """out = lrelu(t + bias[c]) computed in ACC (kernels/_scalars.py); 1-D grid over ((n, c) plane, block of HW):
    no axis limit of 65535 to hit."""
    blocks = tl.cdiv(HW, BLOCK)
    plane, offs = (tl.program_id(0) // blocks).to(tl.int64), (tl.program_id(0) % blocks) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < HW
    slope = tl.cast(slope_hi, ACC) + tl.cast(slope_lo, ACC)
    v = tl.load(t_ptr + plane * HW + offs, mask=mask, other=0.0).to(ACC)
    v += tl.load(bias_ptr + plane % C).to(ACC)
    tl.store(out_ptr + plane * HW + offs, tl.where(v > 0, v, v * slope).to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _bias_lrelu_backward_kernel(grad_ptr, out_ptr, grad_t_ptr, partial_ptr, HW, slope_hi, slope_lo, ACC: tl.constexpr,
                                BLOCK: tl.constexpr):
    """g_t = grad * (out > 0 ? 1 : slope): the mask from the sign of the saved output (same sign as t + b for
    slope >= 0); partial[plane, block] = sum of g_t over this block, summed to the bias gradient afterwards.
    1-D grid over (plane, block), as the forward."""
    blocks = tl.cdiv(HW, BLOCK)
    plane, offs = (tl.program_id(0) // blocks).to(tl.int64), (tl.program_id(0) % blocks) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < HW
    g = tl.load(grad_ptr + plane * HW + offs, mask=mask, other=0.0).to(ACC)
    o = tl.load(out_ptr + plane * HW + offs, mask=mask, other=0.0).to(ACC)
    g = tl.where(o > 0, g, g * (tl.cast(slope_hi, ACC) + tl.cast(slope_lo, ACC)))
    tl.store(grad_t_ptr + plane * HW + offs, g.to(grad_t_ptr.dtype.element_ty), mask=mask)
    tl.store(partial_ptr + tl.program_id(0), tl.sum(g, axis=0))


@triton.jit
def _add_kernel(a_ptr, b_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    a = tl.load(a_ptr + offs, mask=mask, other=0.0)
    b = tl.load(b_ptr + offs, mask=mask, other=0.0)
    tl.store(out_ptr + offs, a + b, mask=mask)


def bias_lrelu_forward(t: torch.Tensor, bias: torch.Tensor, slope: float) -> torch.Tensor:
    t = t.contiguous()
    N, C, H, W = t.shape
    out = torch.empty_like(t)
    _bias_lrelu_forward_kernel[(N * C * triton.cdiv(H * W, BLOCK),)](t, bias.contiguous(), out, H * W, C, *split(slope),
                                                                    ACC=compute_type(t.dtype), BLOCK=BLOCK)
    return out


def lrelu_backward(grad: torch.Tensor, out: torch.Tensor, slope: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(dL/d(t + b), dL/db) from the upstream gradient and the saved output."""
    grad, out = grad.contiguous(), out.contiguous()
    N, C, H, W = grad.shape
    blocks = triton.cdiv(H * W, BLOCK)
    grad_t = torch.empty_like(grad)
    partial = torch.empty(N * C, blocks, device=grad.device, dtype=opmath(grad.dtype))
    _bias_lrelu_backward_kernel[(N * C * blocks,)](grad, out, grad_t, partial, H * W, *split(slope),
                                                   ACC=compute_type(grad.dtype), BLOCK=BLOCK)
    return grad_t, partial.view(N, C, blocks).sum((0, 2)).to(grad.dtype)


@torch.library.custom_op("mdrn_fast_triton::bias_lrelu", mutates_args=())
def _bias_lrelu(t: torch.Tensor, bias: torch.Tensor, slope: float) -> torch.Tensor:
    return bias_lrelu_forward(t, bias, slope)


# Backward ops are custom ops too, so that torch.compile traces them as opaque calls with fake shapes.
@torch.library.custom_op("mdrn_fast_triton::bias_lrelu_backward", mutates_args=())
def _bias_lrelu_bwd(grad: torch.Tensor, out: torch.Tensor, slope: float) -> tuple[torch.Tensor, torch.Tensor]:
    return lrelu_backward(grad, out, slope)


@torch.library.custom_op("mdrn_fast_triton::add_residual", mutates_args=())
def _add_residual(t: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    t, r = t.contiguous(), r.contiguous()
    out = torch.empty_like(t)
    _add_kernel[(triton.cdiv(t.numel(), BLOCK),)](t, r, out, t.numel(), BLOCK=BLOCK)
    return out


@_add_residual.register_fake
def _(t, r):
    return torch.empty_like(t, memory_format=torch.contiguous_format)


wire("mdrn_fast_triton", "bias_lrelu", "add_residual")


@register("bias_lrelu", "triton")
def bias_lrelu(t, bias, slope):
    return _bias_lrelu(t, bias, float(slope))


@register("add_residual", "triton")
def add_residual(t, r):
    return _add_residual(t, r)
