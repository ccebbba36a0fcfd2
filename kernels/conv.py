"""CONV3X3 in Triton: out = lrelu?(conv2d(x, W, b, padding=1)) + residual?, one NHWC implicit GEMM on tensor cores.

The convolution kernel here is generic over (kernel size, stride, padding): the 3x3 convolutions (stride 1,
padding 1) and, in the GPU inference plan (mdrn_fast/gpu_plan.py), DEGRADE's s x s stride-s convolution. A
program computes a TILE_H x TILE_W tile of output pixels for BLOCK_CO output channels: per tap (ky, kx) it loads
the shifted [pixels, BLOCK_CI] input rows (channels contiguous in NHWC memory, so each row is one vector load;
border pixels masked to zero, which is the padding) and multiplies them by that tap's [BLOCK_CI, BLOCK_CO] weight
slice. The nine shifted loads of a 3x3 overlap: after the first they come from L1. Index arithmetic is done once
per tile; a tap adds a scalar offset. Epilogue: bias, LeakyReLU, residual add, NHWC store.

Strides are arguments (Triton specializes a stride of 1, so channels-last memory gives vector loads), so any
layout is read and written correctly; the op returns channels-last.

Backward, with D = dout * (out > 0 ? 1 : slope) (applied as the loads happen, never stored):
  dx = conv(D, W rotated by 180 degrees, input and output channels swapped, padding 1): the same kernel;
  dW[tap] = sum over pixels of x shifted by tap (outer) D, db = sum of D: per-unit partials over disjoint pixel
  ranges, summed afterwards in a fixed order (deterministic).

Precision: fp16 / bf16 multiply on tensor cores with fp32 accumulation; fp64 in fp64; fp32 on TF32 tensor cores
where PyTorch's cuDNN convolution switch allows it (``torch.backends.cudnn.allow_tf32``, on by default, as for
PyTorch's own convolutions), IEEE fp32 otherwise.
"""
from __future__ import annotations

import os
from typing import Optional

import torch
import triton
import triton.language as tl

from mdrn_fast.op_wiring import opmath, wire
from mdrn_fast.registry import register, triton_interpreted

from ._gemm import AUTOTUNE_ENV
from ._scalars import split

CL = torch.channels_last

# (TILE_H, TILE_W, warps, stages), in order of preference: the first that fits in registers is the one used when
# autotuning is off. Few: each is compiled for every layer shape on the first call (bench: the first-call column).
_CONFIGS = [(8, 16, 4, 1), (16, 16, 8, 1), (8, 16, 8, 1), (8, 8, 4, 1)]
# 4-byte registers a thread may hold for one tap's accumulator and input operand before ptxas spills (found with
# tools/triton_compile_check.py: 256 rows x 64 fp32 channels at 8 warps spilled, 256 x 32 did not)
_WORDS_PER_THREAD = 64


def conv_allows_tf32() -> bool:
    """PyTorch's fp32 convolution switch (cuDNN's), read with whichever API the user set."""
    conv = getattr(torch.backends.cudnn, "conv", None)
    new = getattr(conv, "fp32_precision", None) if conv is not None else None
    if new in ("tf32", "ieee"):
        return new == "tf32"
    try:
        return bool(torch.backends.cudnn.allow_tf32)
    except RuntimeError:  # both APIs used: IEEE is the safe reading
        return False


def conv_precision(dtype: torch.dtype) -> str:
    if dtype == torch.float32:
        return "tf32" if conv_allows_tf32() else "ieee"
    return "ieee" if dtype == torch.float64 else "tf32"  # fp16 / bf16: ignored by tl.dot


def fits(rows: int, warps: int, block_ci: int, block_co: int, dtype: torch.dtype) -> bool:
    """Whether a tile of ``rows`` output pixels x ``block_co`` channels, multiplying ``block_ci`` input channels
    of ``dtype``, keeps its accumulator (fp32, fp64 for fp64) and input operand within _WORDS_PER_THREAD."""
    acc_words = 2 if dtype == torch.float64 else 1
    return rows / (32 * warps) * (block_co * acc_words + block_ci * dtype.itemsize / 4) <= _WORDS_PER_THREAD


def _prune(configs, named_args, **kwargs):
    """The configs that fit in registers; only the first under the interpreter, with autotuning off, and for fp64
    (a correctness path)."""
    dtype = named_args["w_ptr"].dtype
    ok = [c for c in configs if fits(c.kwargs["TILE_H"] * c.kwargs["TILE_W"], c.num_warps, kwargs["BLOCK_CI"],
                                     kwargs["BLOCK_CO"], dtype)] or configs[-1:]
    if dtype == torch.float64:  # the smallest tile: fp64 takes two registers a value
        return [min(ok, key=lambda c: c.kwargs["TILE_H"] * c.kwargs["TILE_W"])]
    if triton_interpreted() or os.environ.get(AUTOTUNE_ENV, "1") == "0":
        return ok[:1]
    return ok


def hw_bucket(pixels: int) -> int:
    """Autotune key for the output size: its power of two, so a new image size rarely re-benchmarks."""
    return triton.next_power_of_2(max(1, pixels))


def channel_block(c: int, dtype: torch.dtype = torch.float32) -> int:
    """Channel block of a dot operand: at least 16 (tensor-core K and N), at most 64 (16 in fp64, whose values
    take two registers and which is a correctness path)."""
    return 16 if dtype == torch.float64 else max(16, min(64, triton.next_power_of_2(c)))


@triton.jit
def lrelu(v, slope_hi, slope_lo):
    return tl.where(v > 0, v, v * (tl.cast(slope_hi, v.dtype) + tl.cast(slope_lo, v.dtype)))


@triton.jit
def _lrelu_grad(g, out, slope_hi, slope_lo, ACC: tl.constexpr):
    """g * (out > 0 ? 1 : slope), computed in ACC (the sign of a LeakyReLU output is that of its input)."""
    g = g.to(ACC)
    return tl.where(out > 0, g, g * (tl.cast(slope_hi, ACC) + tl.cast(slope_lo, ACC)))


@triton.jit
def conv_taps(acc, x_ptr, m_ptr, w_ptr, row, ihb, iwb, row_ok, H, W, sxh, sxw, sxc, co, slope_hi, slope_lo,
              CIN: tl.constexpr, COUT: tl.constexpr, KSIZE: tl.constexpr, PRO_LRELU: tl.constexpr,
              PRECISION: tl.constexpr, BLOCK_CI: tl.constexpr):
    """acc [rows, BLOCK_CO] += sum over taps and input channels of x[row + tap offset, ci] w[tap, ci, co].

    row: each output row's input offset at tap (0, 0) (64-bit); ihb, iwb: its input pixel at tap (0, 0), which
    may lie outside the image (the padding); w: packed [KSIZE * KSIZE, CIN, COUT]. With PRO_LRELU the loaded
    values are multiplied by the LeakyReLU derivative read from m (same strides as x): the backward's D."""
    for ci0 in tl.static_range(0, CIN, BLOCK_CI):
        ci = ci0 + tl.arange(0, BLOCK_CI)
        ci_ok = ci < CIN
        w_mask = ci_ok[:, None] & (co < COUT)[None, :]
        for tap in range(KSIZE * KSIZE):  # a loop, not unrolled: the nine loads are not all in flight at once
            ih, iw = ihb + tap // KSIZE, iwb + tap % KSIZE
            ok = row_ok & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
            offs = row + ((tap // KSIZE) * sxh + (tap % KSIZE) * sxw)
            mask = ok[:, None] & ci_ok[None, :]
            a = tl.load(x_ptr + offs[:, None] + (ci * sxc)[None, :], mask=mask, other=0.0)
            if PRO_LRELU:
                m = tl.load(m_ptr + offs[:, None] + (ci * sxc)[None, :], mask=mask, other=0.0)
                a = _lrelu_grad(a, m, slope_hi, slope_lo, acc.dtype)
            w = tl.load(w_ptr + (tap * CIN + ci)[:, None] * COUT + co[None, :], mask=w_mask, other=0.0)
            acc += tl.dot(a.to(w.dtype), w, input_precision=PRECISION, out_dtype=acc.dtype)
    return acc


@triton.autotune(
    configs=[triton.Config({"TILE_H": h, "TILE_W": w}, num_warps=nw, num_stages=ns) for h, w, nw, ns in _CONFIGS],
    key=["CIN", "COUT", "KSIZE", "STRIDE", "HW_BUCKET", "PRECISION", "LRELU", "RESIDUAL"],
    prune_configs_by={"early_config_prune": _prune}, restore_value=["out_ptr"])
@triton.jit
def _conv_kernel(
    x_ptr, w_ptr, b_ptr, r_ptr, m_ptr, out_ptr,
    H, W, HO, WO, HW_BUCKET,                    # HW_BUCKET: autotune key only
    sxn, sxh, sxw, sxc,                         # x (and m) strides, logical NCHW dims
    srn, srh, srw, src,                         # residual strides
    son, soh, sow, soc,                         # out strides
    slope_hi, slope_lo,                         # the LeakyReLU slope as hi + lo (kernels/_scalars.py)
    CIN: tl.constexpr, COUT: tl.constexpr, KSIZE: tl.constexpr, STRIDE: tl.constexpr, PAD: tl.constexpr,
    HAS_BIAS: tl.constexpr, LRELU: tl.constexpr, RESIDUAL: tl.constexpr, PRO_LRELU: tl.constexpr,
    FP64: tl.constexpr, PRECISION: tl.constexpr,
    TILE_H: tl.constexpr, TILE_W: tl.constexpr, BLOCK_CI: tl.constexpr, BLOCK_CO: tl.constexpr,
):
    """out[n, co, oh, ow] = lrelu?(sum_{tap, ci} x[n, ci, oh*S + ky - P, ow*S + kx - P] w[tap, ci, co] + b[co])
    + r?[n, co, oh, ow]. Grid: (tiles of TILE_H x TILE_W output pixels x samples, output-channel blocks)."""
    tiles_w = tl.cdiv(WO, TILE_W)
    tiles = tl.cdiv(HO, TILE_H) * tiles_w
    pid = tl.program_id(0)
    n = (pid // tiles).to(tl.int64)  # 64-bit: n * sample stride may pass 2^31
    th, tw = (pid % tiles) // tiles_w, pid % tiles_w
    m = tl.arange(0, TILE_H * TILE_W)
    oh, ow = th * TILE_H + m // TILE_W, tw * TILE_W + m % TILE_W
    row_ok = (oh < HO) & (ow < WO)
    co = tl.program_id(1) * BLOCK_CO + tl.arange(0, BLOCK_CO)
    ihb, iwb = oh * STRIDE - PAD, ow * STRIDE - PAD
    row = n * sxn + ihb.to(tl.int64) * sxh + iwb.to(tl.int64) * sxw
    acc = tl.zeros((TILE_H * TILE_W, BLOCK_CO), dtype=tl.float64 if FP64 else tl.float32)
    acc = conv_taps(acc, x_ptr, m_ptr, w_ptr, row, ihb, iwb, row_ok, H, W, sxh, sxw, sxc, co, slope_hi, slope_lo,
                    CIN, COUT, KSIZE, PRO_LRELU, PRECISION, BLOCK_CI)
    if HAS_BIAS:
        acc += tl.load(b_ptr + co, mask=co < COUT, other=0.0).to(acc.dtype)[None, :]
    if LRELU:
        acc = lrelu(acc, slope_hi, slope_lo)
    mask = row_ok[:, None] & (co < COUT)[None, :]
    oh64, ow64 = oh.to(tl.int64), ow.to(tl.int64)
    if RESIDUAL:
        r = tl.load(r_ptr + (n * srn + oh64 * srh + ow64 * srw)[:, None] + (co * src)[None, :], mask=mask, other=0.0)
        acc += r.to(acc.dtype)
    out = out_ptr + (n * son + oh64 * soh + ow64 * sow)[:, None] + (co * soc)[None, :]
    tl.store(out, acc.to(out_ptr.dtype.element_ty), mask=mask)


def pack(weight: torch.Tensor) -> torch.Tensor:
    """[COUT, CIN, K, K] -> [K*K, CIN, COUT]: the kernel's weight layout (tap-major, output channels contiguous)."""
    cout, cin, k, _ = weight.shape
    return weight.permute(2, 3, 1, 0).reshape(k * k, cin, cout).contiguous()


def pack_transposed(weight: torch.Tensor) -> torch.Tensor:
    """The packed weights of the data gradient: rotated by 180 degrees, input and output channels swapped."""
    cout, cin, k, _ = weight.shape
    return weight.flip(2, 3).permute(2, 3, 0, 1).reshape(k * k, cout, cin).contiguous()


def same_addressing(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether one offset addresses the same element of a and b (same shape; strides equal where a dim has more
    than one element: a size-1 dim's stride is never used)."""
    return a.shape == b.shape and all(n == 1 or sa == sb for n, sa, sb in zip(a.shape, a.stride(), b.stride()))


def nhwc_strides(t: torch.Tensor | None) -> tuple[int, int, int, int]:
    """(n, h, w, c) strides of a tensor with logical dims [N, C, H, W] (zeros for an absent one)."""
    if t is None:
        return 0, 0, 0, 0
    sn, sc, sh, sw = t.stride()
    return sn, sh, sw, sc


def conv(x: torch.Tensor, wp: torch.Tensor, ksize: int, stride: int = 1, pad: int = 0, bias=None,
         slope: float | None = None, residual=None, lrelu_mask=None, out=None, out_dtype=None) -> torch.Tensor:
    """The convolution of x [N, CIN, H, W] (any strides) with packed weights wp [K*K, CIN, COUT]: see
    _conv_kernel. ``lrelu_mask``: multiply the input by the LeakyReLU derivative of this tensor (same shape and
    strides as x; the backward). Writes ``out`` (default: a new channels-last tensor of ``out_dtype``, else
    x's dtype) and returns it."""
    n, cin, h, w = x.shape
    kk, cin_w, cout = wp.shape
    assert cin_w == cin and kk == ksize * ksize, (tuple(x.shape), tuple(wp.shape), ksize)
    ho, wo = (h + 2 * pad - ksize) // stride + 1, (w + 2 * pad - ksize) // stride + 1
    if out is None:
        out = torch.empty((n, cout, ho, wo), device=x.device, dtype=out_dtype or x.dtype, memory_format=CL)
    if lrelu_mask is not None:
        assert same_addressing(lrelu_mask, x)
    if residual is not None:
        assert residual.shape == out.shape
    block_co = channel_block(cout, wp.dtype)
    grid = lambda meta: (triton.cdiv(ho, meta["TILE_H"]) * triton.cdiv(wo, meta["TILE_W"]) * n,  # noqa: E731
                         triton.cdiv(cout, block_co))
    _conv_kernel[grid](
        x, wp, bias if bias is not None else wp, residual if residual is not None else out,
        lrelu_mask if lrelu_mask is not None else x, out,
        h, w, ho, wo, hw_bucket(ho * wo), *nhwc_strides(x),
        *nhwc_strides(residual if residual is not None else out), *nhwc_strides(out),
        *split(0.0 if slope is None else slope),
        CIN=cin, COUT=cout, KSIZE=ksize, STRIDE=stride, PAD=pad, HAS_BIAS=bias is not None,
        LRELU=slope is not None and lrelu_mask is None, RESIDUAL=residual is not None,
        PRO_LRELU=lrelu_mask is not None, FP64=wp.dtype == torch.float64, PRECISION=conv_precision(wp.dtype),
        BLOCK_CI=channel_block(cin, wp.dtype), BLOCK_CO=block_co,
    )
    return out


@triton.jit
def _conv_weight_grad_kernel(
    x_ptr, g_ptr, m_ptr, out_ptr, bsum_ptr,
    H, W, HO, WO, P, chunk,                     # P = N * HO * WO output pixels; unit u: pixels [u * chunk, +chunk)
    sxn, sxh, sxw, sxc, sgn, sgh, sgw, sgc,     # x strides; g (and m) strides
    slope_hi, slope_lo,
    CIN: tl.constexpr, COUT: tl.constexpr, KSIZE: tl.constexpr, STRIDE: tl.constexpr, PAD: tl.constexpr,
    PRO_LRELU: tl.constexpr, BIAS: tl.constexpr, FP64: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_P: tl.constexpr, BLOCK_CI: tl.constexpr, BLOCK_CO: tl.constexpr,
):
    """out[u, tap, ci, co] = sum over unit u's output pixels p of x[p shifted by tap, ci] D[p, co]; bsum[u, co] =
    sum of D over them (programs of tap 0 and the first channel blocks). Grid: (units, taps, ci blocks x co
    blocks)."""
    unit, tap = tl.program_id(0), tl.program_id(1)
    co_blocks = tl.cdiv(COUT, BLOCK_CO)
    ci = (tl.program_id(2) // co_blocks) * BLOCK_CI + tl.arange(0, BLOCK_CI)
    co = (tl.program_id(2) % co_blocks) * BLOCK_CO + tl.arange(0, BLOCK_CO)
    ky, kx = tap // KSIZE, tap % KSIZE
    acc = tl.zeros((BLOCK_CI, BLOCK_CO), dtype=tl.float64 if FP64 else tl.float32)
    bacc = tl.zeros((BLOCK_CO,), dtype=acc.dtype)
    start = unit.to(tl.int64) * chunk
    end = tl.minimum(P, start + chunk)
    for p0 in range(start, end, BLOCK_P):
        p = p0 + tl.arange(0, BLOCK_P)
        p_ok = p < end
        ow, t = p % WO, p // WO
        oh, n = t % HO, t // HO
        g_mask = p_ok[:, None] & (co < COUT)[None, :]
        g_offs = (n * sgn + oh * sgh + ow * sgw)[:, None] + (co * sgc)[None, :]
        g = tl.load(g_ptr + g_offs, mask=g_mask, other=0.0)
        if PRO_LRELU:
            m = tl.load(m_ptr + g_offs, mask=g_mask, other=0.0)
            g = _lrelu_grad(g, m, slope_hi, slope_lo, acc.dtype).to(g_ptr.dtype.element_ty)
        ih, iw = oh * STRIDE + ky - PAD, ow * STRIDE + kx - PAD
        ok = p_ok & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
        a = tl.load(x_ptr + (n * sxn + ih * sxh + iw * sxw)[:, None] + (ci * sxc)[None, :],
                    mask=ok[:, None] & (ci < CIN)[None, :], other=0.0)
        acc += tl.dot(tl.trans(a.to(g.dtype)), g, input_precision=PRECISION, out_dtype=acc.dtype)
        if BIAS:
            bacc += tl.sum(g.to(acc.dtype), axis=0)
    dst = out_ptr + ((unit * KSIZE * KSIZE + tap) * CIN + ci)[:, None] * COUT + co[None, :]
    tl.store(dst, acc, mask=(ci < CIN)[:, None] & (co < COUT)[None, :])
    if BIAS:
        if (tap == 0) & (tl.program_id(2) < co_blocks):
            tl.store(bsum_ptr + unit * COUT + co, bacc, mask=co < COUT)


# Output pixels one weight-gradient unit reduces at least (fewer under the interpreter, so tests split too), and
# the number of programs to aim for (a few waves of 132 SMs).
_UNIT_PIXELS = 4096
_TARGET_PROGRAMS = 1024
_WGRAD_BLOCK_P = 64


def weight_grad(x: torch.Tensor, g: torch.Tensor, ksize: int, stride: int, pad: int, lrelu_mask=None,
                slope: float | None = None, bias: bool = True):
    """(dW [COUT, CIN, K, K], db [COUT] or None) of the convolution of x whose output gradient is g (times the
    LeakyReLU derivative of ``lrelu_mask``, same shape and strides as g), in x's dtype."""
    n, cin, h, w = x.shape
    _, cout, ho, wo = g.shape
    if lrelu_mask is not None:
        assert same_addressing(lrelu_mask, g)
    # at most 32 channels a side, 32 pixels a step where the products run on FMA units (IEEE fp32, fp64): both
    # operands and the accumulator stay in registers without spills (tools/triton_compile_check.py)
    block_ci, block_co = min(32, channel_block(cin, x.dtype)), min(32, channel_block(cout, x.dtype))
    block_p = 32 if conv_precision(x.dtype) == "ieee" else _WGRAD_BLOCK_P
    blocks = triton.cdiv(cin, block_ci) * triton.cdiv(cout, block_co)
    p = n * ho * wo
    least = block_p if triton_interpreted() else _UNIT_PIXELS
    units = max(1, min(triton.cdiv(p, least), triton.cdiv(_TARGET_PROGRAMS, ksize * ksize * blocks)))
    chunk = triton.cdiv(triton.cdiv(p, units), block_p) * block_p
    units = triton.cdiv(p, chunk)
    acc_dtype = opmath(x.dtype)
    partial = torch.empty(units, ksize * ksize, cin, cout, device=x.device, dtype=acc_dtype)
    bsum = torch.empty(units, cout, device=x.device, dtype=acc_dtype)
    _conv_weight_grad_kernel[(units, ksize * ksize, blocks)](
        x, g, lrelu_mask if lrelu_mask is not None else g, partial, bsum, h, w, ho, wo, p, chunk,
        *nhwc_strides(x), *nhwc_strides(g), *split(0.0 if slope is None else slope),
        CIN=cin, COUT=cout, KSIZE=ksize, STRIDE=stride, PAD=pad, PRO_LRELU=lrelu_mask is not None, BIAS=bias,
        FP64=x.dtype == torch.float64, PRECISION=conv_precision(x.dtype),
        BLOCK_P=block_p, BLOCK_CI=block_ci, BLOCK_CO=block_co, num_warps=8, num_stages=2,
    )
    dw = partial.sum(0).view(ksize, ksize, cin, cout).permute(3, 2, 0, 1).to(x.dtype).contiguous()
    return dw, bsum.sum(0).to(x.dtype) if bias else None


@torch.library.custom_op("mdrn_fast_triton::conv3x3", mutates_args=())
def _conv3x3(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, slope: Optional[float],
             residual: Optional[torch.Tensor]) -> torch.Tensor:
    return conv(x, pack(weight), 3, 1, 1, bias=bias, slope=slope, residual=residual)


@torch.library.custom_op("mdrn_fast_triton::conv3x3_backward", mutates_args=())
def _conv3x3_backward(grad: torch.Tensor, out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor,
                      slope: Optional[float]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    grad = grad.contiguous(memory_format=CL)
    mask = out.contiguous(memory_format=CL) if slope is not None else None
    grad_x = conv(grad, pack_transposed(weight), 3, 1, 1, lrelu_mask=mask, slope=slope)
    grad_w, grad_b = weight_grad(x, grad, 3, 1, 1, lrelu_mask=mask, slope=slope)
    return grad_x, grad_w, grad_b


wire("mdrn_fast_triton", "conv3x3")


@register("conv3x3", "triton")
def conv3x3(x, weight, bias, slope, residual):
    return _conv3x3(x, weight, bias, None if slope is None else float(slope), residual)
