"""FUSE in Triton: out = conv1x1(concat(parts), W, b) with no concat buffer: W = [W_0 | W_1 | ...] by input
channels and out = b + sum_i W_i parts_i, one GEMM launch per part accumulating into out (the first adds b).

Backward, again with no concat buffer: dparts_i = W_i^T dout (each written straight into its own gradient),
dW_i = sum_n dout_n parts_i,n^T, db = row sums of dout (computed with dW_0).
"""
from typing import List

import torch

from mdrn_fast.op_wiring import wire
from mdrn_fast.registry import register

from ._gemm import gemm, weight_grad


@torch.library.custom_op("mdrn_fast_triton::fuse", mutates_args=())
def _fuse(parts: List[torch.Tensor], weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    first = parts[0]
    out = first.new_empty(first.shape[0], weight.shape[0], first.shape[2], first.shape[3])
    w2 = weight.reshape(weight.shape[0], -1)
    offset = 0
    for i, p in enumerate(parts):
        ci = p.shape[1]
        gemm(w2[:, offset:offset + ci], p.contiguous(), 1, out, 1, bias=bias.contiguous() if i == 0 else None,
             accumulate=i > 0)
        offset += ci
    return out


@torch.library.custom_op("mdrn_fast_triton::fuse_backward", mutates_args=())
def _fuse_backward(grad: torch.Tensor, parts: List[torch.Tensor],
                   weight: torch.Tensor) -> tuple[List[torch.Tensor], torch.Tensor, torch.Tensor]:
    grad = grad.contiguous()
    w2 = weight.reshape(weight.shape[0], -1)
    grad_parts, grad_w, grad_b, offset = [], [], None, 0
    for i, p in enumerate(parts):
        ci, p = p.shape[1], p.contiguous()
        grad_parts.append(gemm(w2[:, offset:offset + ci].t(), grad, 1, torch.empty_like(p), 1))
        gw, rows = weight_grad(grad, 1, p, 1, rowsum=i == 0)
        grad_w.append(gw)
        grad_b = rows if i == 0 else grad_b
        offset += ci
    return grad_parts, torch.cat(grad_w, 1).view_as(weight), grad_b


wire("mdrn_fast_triton", "fuse")


@register("fuse", "triton")
def fuse(parts, weight, bias):
    return _fuse(list(parts), weight, bias)
