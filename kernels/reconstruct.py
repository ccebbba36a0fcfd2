"""RECONSTRUCT in Triton: out = pixel_shuffle(conv1x1(h, W, b), s) as ONE GEMM whose store writes the
pixel-shuffled layout directly (the patch layout of out with scale s), bias added before the store.

Backward: the gradient of pixel_shuffle is a gather, done by the loads of the GEMMs that need it:
  dh = W^T unshuffle(dout);  dW = sum_n unshuffle(dout)_n h_n^T;  db = row sums of unshuffle(dout) (same kernel).
"""
import torch

from mdrn_fast.op_wiring import wire
from mdrn_fast.registry import register

from ._gemm import gemm, weight_grad


@torch.library.custom_op("mdrn_fast_triton::reconstruct", mutates_args=())
def _reconstruct(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, scale: int) -> torch.Tensor:
    h = h.contiguous()
    N, _, hh, ww = h.shape
    out = h.new_empty(N, weight.shape[0] // (scale * scale), hh * scale, ww * scale)
    return gemm(weight.reshape(weight.shape[0], -1), h, 1, out, scale, bias=bias.contiguous())


@torch.library.custom_op("mdrn_fast_triton::reconstruct_backward", mutates_args=())
def _reconstruct_backward(grad: torch.Tensor, h: torch.Tensor, weight: torch.Tensor,
                          s: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    h, grad = h.contiguous(), grad.contiguous()
    grad_h = gemm(weight.reshape(weight.shape[0], -1).t(), grad, s, torch.empty_like(h), 1)
    grad_w, grad_b = weight_grad(grad, s, h, 1, rowsum=True)
    return grad_h, grad_w.view_as(weight), grad_b


wire("mdrn_fast_triton", "reconstruct")


@register("reconstruct", "triton")
def reconstruct(h, weight, bias, scale):
    return _reconstruct(h, weight, bias, int(scale))
