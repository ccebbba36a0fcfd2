"""DEGRADE in Triton: out = lrelu(conv2d(x, W, b, stride=s)) as ONE kernel: the s x s patches are gathered
by the GEMM's loads (patch layout of x), bias and LeakyReLU are applied before its store.

Backward, with D = dL/d(pre-activation) = grad * (out > 0 ? 1 : slope) (bias gradient reduced in that pass):
  dx = patches^T(W^T D): a GEMM whose store scatters straight into the s x s blocks of dx (no overlaps);
  dW = sum_n D_n patches(x_n)^T: the weight-gradient GEMM reading x through its patch layout again
  (recomputed, not stored).
"""
import torch

from mdrn_fast.registry import register

from ._gemm import gemm, weight_grad
from .epilogue import lrelu_backward


@torch.library.custom_op("mdrn_fast_triton::degrade", mutates_args=())
def _degrade(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, scale: int, slope: float) -> torch.Tensor:
    x = x.contiguous()
    N, C, H, W = x.shape
    out = x.new_empty(N, weight.shape[0], H // scale, W // scale)
    return gemm(weight.reshape(weight.shape[0], -1), x, scale, out, 1, bias=bias.contiguous(), slope=slope)


@_degrade.register_fake
def _(x, weight, bias, scale, slope):
    return x.new_empty(x.shape[0], weight.shape[0], x.shape[2] // scale, x.shape[3] // scale)


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


@_degrade_backward.register_fake
def _(grad, out, x, weight, s, slope):
    return (torch.empty_like(x, memory_format=torch.contiguous_format), torch.empty_like(weight),
            weight.new_empty(weight.shape[0]))


def _setup(ctx, inputs, output):
    x, weight, _, scale, slope = inputs
    ctx.save_for_backward(output, x, weight)
    ctx.scale, ctx.slope = scale, slope


def _backward(ctx, grad):
    out, x, weight = ctx.saved_tensors
    return *_degrade_backward(grad, out, x, weight, ctx.scale, ctx.slope), None, None


_degrade.register_autograd(_backward, setup_context=_setup)


@register("degrade", "triton")
def degrade(x, weight, bias, scale, slope):
    return _degrade(x, weight, bias, int(scale), float(slope))
