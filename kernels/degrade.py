"""DEGRADE in Triton: out = lrelu(conv2d(x, W, b, stride=s)) as ONE kernel: the s x s patches are gathered
by the GEMM's loads (patch layout of x), bias and LeakyReLU are applied before its store.

Backward, with D = dL/d(pre-activation) = grad * (out > 0 ? 1 : slope) (bias gradient reduced in that pass):
  dx = patches^T(W^T D): a GEMM whose store scatters straight into the s x s blocks of dx (no overlaps);
  dW = sum_n D_n patches(x_n)^T: the weight-gradient GEMM reading x through its patch layout again
  (recomputed, not stored).
"""
import torch

from mdrn_fast.op_wiring import wire
from mdrn_fast.registry import register

from ._gemm import gemm, weight_grad
from .epilogue import lrelu_backward


@torch.library.custom_op("mdrn_fast_triton::degrade", mutates_args=())
def _degrade(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, scale: int, slope: float) -> torch.Tensor:
    x = x.contiguous()
    N, C, H, W = x.shape
    out = x.new_empty(N, weight.shape[0], H // scale, W // scale)
    return gemm(weight.reshape(weight.shape[0], -1), x, scale, out, 1, bias=bias.contiguous(), slope=slope)


@torch.library.custom_op("mdrn_fast_triton::degrade_backward", mutates_args=())
def _degrade_backward(grad: torch.Tensor, out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, s: int,
                      slope: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = x.contiguous()
    d, grad_b = lrelu_backward(grad, out, slope)
    covered = x.shape[2] % s == 0 and x.shape[3] % s == 0
    grad_x = torch.empty_like(x) if covered else torch.zeros_like(x)  # rows/cols past the last patch get 0
    gemm(weight.reshape(weight.shape[0], -1).t(), d, 1, grad_x, s)
    grad_w, _ = weight_grad(d, 1, x, s)
    return grad_x, grad_w.view_as(weight), grad_b


wire("mdrn_fast_triton", "degrade")


@register("degrade", "triton")
def degrade(x, weight, bias, scale, slope):
    return _degrade(x, weight, bias, int(scale), float(slope))
