"""The two Triton GEMMs every conv-like op of MDRN is built from, over "patch layouts".

A patch layout views a 4-D NCHW tensor t [N, C, H, W] with scale s as a matrix per sample
[C*s*s, (H/s)*(W/s)]: row k = (c, i, j), column p = (ho, wo) holds t[c, ho*s + i, wo*s + j]. With s = 1 it
is the plain [C, H*W] view; the s x s patches of DEGRADE and the pixel-shuffled output of RECONSTRUCT are
both this layout. Reading or writing through it *is* the gather / pixel-shuffle, fused into the GEMM's
loads and stores, so no unshuffled or concatenated buffer ever exists.

  gemm:        C[n] (+)= A @ B[n]  (+ bias, LeakyReLU)       A [M, K] any strides; B, C patch layouts
  weight_grad: out = sum_n G[n] @ X[n]^T,  rowsum = sum_n,p G  (split over (n, p), partials summed after)

Precision: fp16 / bf16 multiply on tensor cores with fp32 accumulation; fp64 accumulates in fp64; fp32 uses
TF32 tensor cores only where PyTorch's matmul switch allows it (``torch.backends.cuda.matmul.allow_tf32``
or ``fp32_precision = "tf32"``), as ``at::mm`` in the C++ backend does, and IEEE fp32 otherwise (default).
"""
from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from mdrn_fast.registry import triton_interpreted

from ._scalars import split

# (BLOCK_M, BLOCK_P, BLOCK_K, warps, stages); the first is the one used when autotuning is off: it is the one
# that compiles without spills in every dtype and precision (tools/triton_compile_check.py)
_CONFIGS = [(64, 64, 32, 4, 4), (32, 128, 32, 4, 3), (64, 128, 32, 4, 3), (32, 256, 32, 8, 3), (128, 128, 32, 8, 3),
            (16, 256, 16, 4, 4)]
# fp64 runs on FMA units with twice the registers per value: a smaller tile, no autotuning (a correctness path)
_FP64_CONFIG = triton.Config({"BLOCK_M": 32, "BLOCK_P": 64, "BLOCK_K": 16}, num_warps=4, num_stages=2)
AUTOTUNE_ENV = "MDRN_FAST_TRITON_AUTOTUNE"  # "0": one config, no benchmarking (quick GPU checks)


def matmul_allows_tf32() -> bool:
    """PyTorch's fp32 matmul switch, read with whichever API (legacy or fp32_precision) the user set it."""
    matmul = torch.backends.cuda.matmul
    new = getattr(matmul, "fp32_precision", None)
    if new in ("tf32", "ieee"):
        return new == "tf32"
    try:
        return bool(matmul.allow_tf32)
    except RuntimeError:  # torch refuses to answer when both APIs were used; IEEE is the safe reading
        return False


def dot_precision(dtype: torch.dtype) -> str:
    """tl.dot's input_precision for operands of ``dtype`` (see the module docstring)."""
    if dtype == torch.float32 and matmul_allows_tf32():
        return "tf32"
    return "ieee" if dtype in (torch.float32, torch.float64) else "tf32"  # fp16/bf16: ignored


def _prune(configs, named_args, **kwargs):
    """One config under the interpreter, with autotuning off, and for fp64 (a correctness path, not a fast one)."""
    if named_args["a_ptr"].dtype == torch.float64:
        return [_FP64_CONFIG]
    if triton_interpreted() or os.environ.get(AUTOTUNE_ENV, "1") == "0":
        return configs[:1]
    return configs


def _p_bucket(p: int) -> int:
    """The autotune key for the column count: its power of two, so a new image size rarely re-benchmarks."""
    return triton.next_power_of_2(p)


# restore_value: autotuning re-runs the kernel, which must not accumulate into C more than once
@triton.autotune(
    configs=[triton.Config({"BLOCK_M": m, "BLOCK_P": p, "BLOCK_K": k}, num_warps=w, num_stages=s)
             for m, p, k, w, s in _CONFIGS],
    key=["M", "K", "P_BUCKET"], restore_value=["c_ptr"], prune_configs_by={"early_config_prune": _prune})
@triton.jit
def _gemm_kernel(
    a_ptr, b_ptr, c_ptr, bias_ptr,
    M, K, P, P_BUCKET,                          # P_BUCKET: autotune key only
    sam, sak,                                   # A [M, K] strides
    sbn, bS, sbc, sbi, sbj, bPW, sbh, sbw,      # B patch layout (see patch_layout)
    scn, cS, scc, sci, scj, cPW, sch, scw,      # C patch layout
    slope_hi, slope_lo,                         # the LeakyReLU slope as hi + lo (kernels/_scalars.py)
    HAS_BIAS: tl.constexpr, LRELU: tl.constexpr, ACCUMULATE: tl.constexpr, FP64: tl.constexpr,
    PRECISION: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_K: tl.constexpr,
):
    """C[n, m, p] = lrelu?(sum_k A[m, k] B[n, k, p] + bias[m] + (C[n, m, p] if ACCUMULATE)). Grid: (column
    tiles x samples, row tiles): the batch shares axis 0, whose limit is 2^31 - 1, not 65535."""
    p_tiles = tl.cdiv(P, BLOCK_P)
    pid_p, pid_m = tl.program_id(0) % p_tiles, tl.program_id(1)
    n = (tl.program_id(0) // p_tiles).to(tl.int64)  # 64-bit: n * sample stride may pass 2^31
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    b_col = (offs_p // bPW) * sbh + (offs_p % bPW) * sbw
    acc = tl.zeros((BLOCK_M, BLOCK_P), dtype=tl.float64 if FP64 else tl.float32)
    for k0 in range(0, K, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        a = tl.load(a_ptr + offs_m[:, None] * sam + offs_k[None, :] * sak,
                    mask=(offs_m[:, None] < M) & (offs_k[None, :] < K), other=0.0)
        b_row = (offs_k // (bS * bS)) * sbc + ((offs_k // bS) % bS) * sbi + (offs_k % bS) * sbj
        b = tl.load(b_ptr + n * sbn + b_row[:, None] + b_col[None, :],
                    mask=(offs_k[:, None] < K) & (offs_p[None, :] < P), other=0.0)
        acc += tl.dot(a, b, input_precision=PRECISION, out_dtype=acc.dtype)
    if HAS_BIAS:
        acc += tl.load(bias_ptr + offs_m, mask=offs_m < M, other=0.0).to(acc.dtype)[:, None]
    c_row = (offs_m // (cS * cS)) * scc + ((offs_m // cS) % cS) * sci + (offs_m % cS) * scj
    c_col = (offs_p // cPW) * sch + (offs_p % cPW) * scw
    c_ptrs = c_ptr + n * scn + c_row[:, None] + c_col[None, :]
    mask = (offs_m[:, None] < M) & (offs_p[None, :] < P)
    if ACCUMULATE:
        acc += tl.load(c_ptrs, mask=mask, other=0.0).to(acc.dtype)
    if LRELU:
        acc = tl.where(acc > 0, acc, acc * (tl.cast(slope_hi, acc.dtype) + tl.cast(slope_lo, acc.dtype)))
    tl.store(c_ptrs, acc.to(c_ptr.dtype.element_ty), mask=mask)


def patch_layout(t: torch.Tensor, s: int) -> tuple:
    """(sample stride, S, row strides (c, i, j), columns per patch row, column strides (ho, wo)) of t [N, C, H, W]."""
    assert t.is_contiguous()
    _, _, h, w = t.shape
    return (t.stride(0), s, h * w, w, 1, w // s, s * w, s)


def gemm(a: torch.Tensor, b: torch.Tensor, b_scale: int, c: torch.Tensor, c_scale: int, bias=None,
         slope: float | None = None, accumulate: bool = False) -> torch.Tensor:
    """c (+)= a @ b per sample through patch layouts (see module docstring); returns c."""
    M, K = a.shape
    N = b.shape[0]
    P = (b.shape[2] // b_scale) * (b.shape[3] // b_scale)
    grid = lambda meta: (triton.cdiv(P, meta["BLOCK_P"]) * N, triton.cdiv(M, meta["BLOCK_M"]))  # noqa: E731
    _gemm_kernel[grid](
        a, b, c, bias if bias is not None else a, M, K, P, _p_bucket(P), a.stride(0), a.stride(1),
        *patch_layout(b, b_scale), *patch_layout(c, c_scale), *split(0.0 if slope is None else slope),
        HAS_BIAS=bias is not None, LRELU=slope is not None, ACCUMULATE=accumulate, FP64=a.dtype == torch.float64,
        PRECISION=dot_precision(a.dtype),
    )
    return c


@triton.jit
def _weight_grad_kernel(
    g_ptr, x_ptr, out_ptr, rowsum_ptr,
    M, K, N, P, group, splits, chunk,           # unit u: samples [u // splits * group, +group), columns [u % splits * chunk, +chunk)
    sgn, gS, sgc, sgi, sgj, gPW, sgh, sgw,      # G patch layout, rows m
    sxn, xS, sxc, sxi, sxj, xPW, sxh, sxw,      # X patch layout, rows k
    ROWSUM: tl.constexpr, FP64: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_P: tl.constexpr,
):
    """out[u, m, k] = sum over unit u's samples and columns p of G[n, m, p] X[n, k, p]; rowsum[u, m] likewise of
    G alone (the bias gradient). Units split the (sample, column) space so that a small M x K still fills a GPU;
    their partials are summed afterwards in a fixed order (deterministic)."""
    pid_k, pid_m, unit = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_k = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
    g_row = (offs_m // (gS * gS)) * sgc + ((offs_m // gS) % gS) * sgi + (offs_m % gS) * sgj
    x_row = (offs_k // (xS * xS)) * sxc + ((offs_k // xS) % xS) * sxi + (offs_k % xS) * sxj
    acc = tl.zeros((BLOCK_M, BLOCK_K), dtype=tl.float64 if FP64 else tl.float32)
    rows = tl.zeros((BLOCK_M,), dtype=acc.dtype)
    n_start, p_start = (unit // splits).to(tl.int64) * group, (unit % splits) * chunk  # n: 64-bit, as in gemm
    n_end, p_end = tl.minimum(N, n_start + group), tl.minimum(P, p_start + chunk)
    for n in range(n_start, n_end):
        for p0 in range(p_start, p_end, BLOCK_P):
            offs_p = p0 + tl.arange(0, BLOCK_P)
            in_p = offs_p < p_end
            g = tl.load(g_ptr + n * sgn + g_row[:, None] + ((offs_p // gPW) * sgh + (offs_p % gPW) * sgw)[None, :],
                        mask=(offs_m[:, None] < M) & in_p[None, :], other=0.0)
            x = tl.load(x_ptr + n * sxn + x_row[None, :] + ((offs_p // xPW) * sxh + (offs_p % xPW) * sxw)[:, None],
                        mask=(offs_k[None, :] < K) & in_p[:, None], other=0.0)
            acc += tl.dot(g, x, input_precision=PRECISION, out_dtype=acc.dtype)
            if ROWSUM:
                rows += tl.sum(g.to(acc.dtype), axis=1)
    out = out_ptr + unit * M * K + offs_m[:, None] * K + offs_k[None, :]
    tl.store(out, acc, mask=(offs_m[:, None] < M) & (offs_k[None, :] < K))
    if ROWSUM:
        if pid_k == 0:
            tl.store(rowsum_ptr + unit * M + offs_m, rows, mask=offs_m < M)


# Columns one weight-gradient unit reduces at least (fewer under the interpreter, so tests split too), and the
# number of programs to aim for (a few waves of 132 SMs).
_UNIT_COLUMNS = 2048
_TARGET_PROGRAMS = 1024


def work_units(n: int, p: int, tiles: int) -> tuple[int, int, int]:
    """(samples per unit, column splits per sample, columns per split) for the weight-gradient reduction."""
    min_cols = 64 if triton_interpreted() else _UNIT_COLUMNS
    cols = max(min_cols, triton.cdiv(n * p, max(1, _TARGET_PROGRAMS // tiles)))
    if p >= cols:
        group, splits = 1, triton.cdiv(p, cols)
    else:
        group, splits = max(1, cols // p), 1
    chunk = triton.cdiv(p, splits)
    return group, triton.cdiv(p, chunk), chunk


def weight_grad(g: torch.Tensor, g_scale: int, x: torch.Tensor, x_scale: int, rowsum: bool = False):
    """(sum_n G[n] X[n]^T as [M, K], and sum_n,p G[n] as [M] when rowsum) in g's dtype."""
    N, Cg, Hg, Wg = g.shape
    M, K = Cg * g_scale * g_scale, x.shape[1] * x_scale * x_scale
    P = (Hg // g_scale) * (Wg // g_scale)
    block_m, block_k, block_p = (32, 32, 32) if triton_interpreted() else (32, 32, 64)
    tiles = triton.cdiv(K, block_k) * triton.cdiv(M, block_m)
    group, splits, chunk = work_units(N, P, tiles)
    units = triton.cdiv(N, group) * splits
    acc_dtype = torch.float64 if g.dtype == torch.float64 else torch.float32
    out = torch.empty(units, M, K, device=g.device, dtype=acc_dtype)
    rows = torch.empty(units, M, device=g.device, dtype=acc_dtype)
    grid = (triton.cdiv(K, block_k), triton.cdiv(M, block_m), units)
    _weight_grad_kernel[grid](
        g, x, out, rows, M, K, N, P, group, splits, chunk, *patch_layout(g, g_scale), *patch_layout(x, x_scale),
        ROWSUM=rowsum, FP64=g.dtype == torch.float64, PRECISION=dot_precision(g.dtype),
        BLOCK_M=block_m, BLOCK_K=block_k, BLOCK_P=block_p, num_warps=8, num_stages=2,  # no spills in any dtype
    )
    return out.sum(0).to(g.dtype), rows.sum(0).to(g.dtype) if rowsum else None
