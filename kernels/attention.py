"""Channel attention in Triton: out = x + f * a, a = sigmoid(W2 relu(W1 mean_hw(f) + c1) + c2).

Forward: one reduction kernel (mean over HW per (n, c) plane), the tiny [N, C] MLP in torch (N*C values:
a kernel would not pay), one scale-add-residual kernel. Backward: s = sum_hw(dout * f) by the reduction
kernel; the MLP's gradient on [N, C] in torch; df = dout * a + (dL/dmean) / HW by the scale-shift kernel;
dx = dout (the identity: no copy).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from mdrn_fast.op_wiring import opmath, wire
from mdrn_fast.registry import register

from ._scalars import compute_type

BLOCK = 1024


@triton.jit
def _plane_sum_kernel(a_ptr, b_ptr, out_ptr, HW, CHUNK, PRODUCT: tl.constexpr, ACC: tl.constexpr,
                      BLOCK: tl.constexpr):
    """out[plane, part] = sum over the part's CHUNK elements of the plane of a (or a * b when PRODUCT),
    accumulated in ACC (fp32, fp64 for fp64). Grid: (planes, parts): a plane is split so that a small batch
    still fills the GPU."""
    plane, part = tl.program_id(0).to(tl.int64), tl.program_id(1)
    acc = tl.zeros((BLOCK,), dtype=ACC)
    for start in range(part * CHUNK, tl.minimum(HW, (part + 1) * CHUNK), BLOCK):
        offs = start + tl.arange(0, BLOCK)
        mask = offs < HW
        v = tl.load(a_ptr + plane * HW + offs, mask=mask, other=0.0).to(ACC)
        if PRODUCT:
            v *= tl.load(b_ptr + plane * HW + offs, mask=mask, other=0.0).to(ACC)
        acc += v
    tl.store(out_ptr + plane * tl.num_programs(1) + part, tl.sum(acc, axis=0))


@triton.jit
def _scale_add_kernel(f_ptr, a_ptr, x_ptr, d_ptr, out_ptr, HW, HAS_X: tl.constexpr, HAS_D: tl.constexpr,
                      ACC: tl.constexpr, BLOCK: tl.constexpr):
    """out = f * a[plane] (+ x) (+ d[plane]): the attention store (x + f a) and its backward (g a + d).
    1-D grid over (plane, block): no axis limit of 65535 to hit."""
    blocks = tl.cdiv(HW, BLOCK)
    plane, offs = (tl.program_id(0) // blocks).to(tl.int64), (tl.program_id(0) % blocks) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < HW
    v = tl.load(f_ptr + plane * HW + offs, mask=mask, other=0.0).to(ACC) * tl.load(a_ptr + plane).to(ACC)
    if HAS_X:
        v += tl.load(x_ptr + plane * HW + offs, mask=mask, other=0.0).to(ACC)
    if HAS_D:
        v += tl.load(d_ptr + plane).to(ACC)
    tl.store(out_ptr + plane * HW + offs, v.to(out_ptr.dtype.element_ty), mask=mask)


_PLANE_CHUNK = 16 * BLOCK  # elements one program of plane_sums reduces


def plane_sums(a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """[N, C] sums over H, W of a (or of a * b), in opmath (float32, float64 for float64); partials summed in a
    fixed order (deterministic)."""
    N, C, H, W = a.shape
    parts = triton.cdiv(H * W, _PLANE_CHUNK)
    out = torch.empty(N * C, parts, device=a.device, dtype=opmath(a.dtype))
    _plane_sum_kernel[(N * C, parts)](a, b if b is not None else a, out, H * W, _PLANE_CHUNK,
                                      PRODUCT=b is not None, ACC=compute_type(a.dtype), BLOCK=BLOCK)
    return out.sum(1).view(N, C)


def scale_add(f: torch.Tensor, a: torch.Tensor, x: torch.Tensor | None = None, d: torch.Tensor | None = None):
    N, C, H, W = f.shape
    out = torch.empty_like(f)
    _scale_add_kernel[(N * C * triton.cdiv(H * W, BLOCK),)](
        f, a.contiguous(), x if x is not None else f, d.contiguous() if d is not None else a, out, H * W,
        HAS_X=x is not None, HAS_D=d is not None, ACC=compute_type(f.dtype), BLOCK=BLOCK)
    return out


def _mlp(pooled, w1, b1, w2, b2):
    """The [N, C] MLP in the pooled means' dtype (opmath)."""
    dt = pooled.dtype
    z1 = F.linear(pooled, w1.to(dt), b1.to(dt))
    return z1, torch.sigmoid(F.linear(F.relu(z1), w2.to(dt), b2.to(dt)))


@torch.library.custom_op("mdrn_fast_triton::channel_attention", mutates_args=())
def _attention(x: torch.Tensor, f: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor,
               b2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x, f = x.contiguous(), f.contiguous()
    pooled = plane_sums(f) / (f.shape[2] * f.shape[3])
    _, a = _mlp(pooled, w1, b1, w2, b2)
    return scale_add(f, a, x=x), pooled


@torch.library.custom_op("mdrn_fast_triton::channel_attention_backward", mutates_args=())
def _attention_backward(grad: torch.Tensor, f: torch.Tensor, pooled: torch.Tensor, w1: torch.Tensor,
                        b1: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                                                       torch.Tensor, torch.Tensor,
                                                                                       torch.Tensor]:
    grad, f = grad.contiguous(), f.contiguous()
    z1, a = _mlp(pooled, w1, b1, w2, b2)
    dz2 = plane_sums(grad, f) * a * (1 - a)
    dz1 = (dz2 @ w2.to(dz2.dtype)) * (z1 > 0)
    grad_f = scale_add(grad, a, d=(dz1 @ w1.to(dz1.dtype)) / (f.shape[2] * f.shape[3]))
    dt = w1.dtype
    return (grad_f, (dz1.t() @ pooled).to(dt), dz1.sum(0).to(dt), (dz2.t() @ F.relu(z1)).to(dt),
            dz2.sum(0).to(dt))


wire("mdrn_fast_triton", "channel_attention")


@register("channel_attention", "triton")
def channel_attention(x, f, w1, b1, w2, b2):
    return _attention(x, f, w1, b1, w2, b2)[0]
