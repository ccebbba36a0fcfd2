"""The two Triton GEMMs every conv-like op of MDRN is built from, over "patch layouts".

A patch layout views a 4-D NCHW tensor t [N, C, H, W] with scale s as a matrix per sample
[C*s*s, (H/s)*(W/s)]: row k = (c, i, j), column p = (ho, wo) holds t[c, ho*s + i, wo*s + j]. With s = 1 it
is the plain [C, H*W] view; the s x s patches of DEGRADE and the pixel-shuffled output of RECONSTRUCT are
both this layout. Reading or writing through it *is* the gather / pixel-shuffle, fused into the GEMM's
loads and stores, so no unshuffled or concatenated buffer ever exists.

  gemm:        C[n] (+)= A @ B[n]  (+ bias, LeakyReLU)       A [M, K] any strides; B, C patch layouts
  weight_grad: out = sum_n G[n] @ X[n]^T,  rowsum = sum_n,p G  (split over p, partials summed after)
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from mdrn_fast.registry import triton_interpreted


def patch_layout(t: torch.Tensor, s: int) -> tuple:
    """(sample stride, S, row strides (c, i, j), columns per patch row, column strides (ho, wo)) of t [N, C, H, W]."""
    assert t.is_contiguous()
    _, _, h, w = t.shape
    return (t.stride(0), s, h * w, w, 1, w // s, s * w, s)


def _configs():
    if triton_interpreted():  # the interpreter runs one config, no autotuning
        return [triton.Config({"BLOCK_M": 32, "BLOCK_P": 32, "BLOCK_K": 16}, num_warps=4)]
    return [
        triton.Config({"BLOCK_M": bm, "BLOCK_P": bp, "BLOCK_K": bk}, num_warps=w, num_stages=st)
        for bm, bp, bk, w, st in [(32, 128, 32, 4, 3), (64, 128, 32, 4, 3), (32, 256, 32, 8, 3), (64, 64, 32, 4, 4),
                                  (128, 128, 32, 8, 3), (16, 256, 16, 4, 4)]
    ]


# restore_value: autotuning re-runs the kernel, which must not accumulate into C more than once
@triton.autotune(configs=_configs(), key=["M", "K", "P"], restore_value=["c_ptr"])
@triton.jit
def _gemm_kernel(
    a_ptr, b_ptr, c_ptr, bias_ptr,
    M, K, P,
    sam, sak,                                   # A [M, K] strides
    sbn, bS, sbc, sbi, sbj, bPW, sbh, sbw,      # B patch layout (see patch_layout)
    scn, cS, scc, sci, scj, cPW, sch, scw,      # C patch layout
    slope,
    HAS_BIAS: tl.constexpr, LRELU: tl.constexpr, ACCUMULATE: tl.constexpr, IEEE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_K: tl.constexpr,
):
    """C[n, m, p] = lrelu?(sum_k A[m, k] B[n, k, p] + bias[m] + (C[n, m, p] if ACCUMULATE)), fp32 accumulation."""
    pid_p, pid_m, n = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    b_col = (offs_p // bPW) * sbh + (offs_p % bPW) * sbw
    acc = tl.zeros((BLOCK_M, BLOCK_P), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        a = tl.load(a_ptr + offs_m[:, None] * sam + offs_k[None, :] * sak,
                    mask=(offs_m[:, None] < M) & (offs_k[None, :] < K), other=0.0)
        b_row = (offs_k // (bS * bS)) * sbc + ((offs_k // bS) % bS) * sbi + (offs_k % bS) * sbj
        b = tl.load(b_ptr + n * sbn + b_row[:, None] + b_col[None, :],
                    mask=(offs_k[:, None] < K) & (offs_p[None, :] < P), other=0.0)
        if IEEE:
            acc += tl.dot(a, b, input_precision="ieee")
        else:
            acc += tl.dot(a, b)
    if HAS_BIAS:
        acc += tl.load(bias_ptr + offs_m, mask=offs_m < M, other=0.0).to(tl.float32)[:, None]
    c_row = (offs_m // (cS * cS)) * scc + ((offs_m // cS) % cS) * sci + (offs_m % cS) * scj
    c_col = (offs_p // cPW) * sch + (offs_p % cPW) * scw
    c_ptrs = c_ptr + n * scn + c_row[:, None] + c_col[None, :]
    mask = (offs_m[:, None] < M) & (offs_p[None, :] < P)
    if ACCUMULATE:
        acc += tl.load(c_ptrs, mask=mask, other=0.0).to(tl.float32)
    if LRELU:
        acc = tl.where(acc > 0, acc, acc * slope)
    tl.store(c_ptrs, acc.to(c_ptr.dtype.element_ty), mask=mask)


def gemm(a: torch.Tensor, b: torch.Tensor, b_scale: int, c: torch.Tensor, c_scale: int, bias=None,
         slope: float | None = None, accumulate: bool = False) -> torch.Tensor:
    """c (+)= a @ b per sample through patch layouts (see module docstring); returns c."""
    M, K = a.shape
    N = b.shape[0]
    P = (b.shape[2] // b_scale) * (b.shape[3] // b_scale)
    grid = lambda meta: (triton.cdiv(P, meta["BLOCK_P"]), triton.cdiv(M, meta["BLOCK_M"]), N)  # noqa: E731
    _gemm_kernel[grid](
        a, b, c, bias if bias is not None else a, M, K, P, a.stride(0), a.stride(1),
        *patch_layout(b, b_scale), *patch_layout(c, c_scale), 0.0 if slope is None else slope,
        HAS_BIAS=bias is not None, LRELU=slope is not None, ACCUMULATE=accumulate, IEEE=a.dtype == torch.float32,
    )
    return c


@triton.jit
def _weight_grad_kernel(
    g_ptr, x_ptr, out_ptr, rowsum_ptr,
    M, K, N, P, chunk,
    sgn, gS, sgc, sgi, sgj, gPW, sgh, sgw,      # G patch layout, rows m
    sxn, xS, sxc, sxi, sxj, xPW, sxh, sxw,      # X patch layout, rows k
    ROWSUM: tl.constexpr, IEEE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_P: tl.constexpr,
):
    """out[split, m, k] = sum over n and this split's columns p of G[n, m, p] X[n, k, p]; rowsum[split, m] likewise
    of G alone (the bias gradient). The columns are split across programs so that small M x K still fills a GPU."""
    pid_k, pid_m, split = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_k = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
    g_row = (offs_m // (gS * gS)) * sgc + ((offs_m // gS) % gS) * sgi + (offs_m % gS) * sgj
    x_row = (offs_k // (xS * xS)) * sxc + ((offs_k // xS) % xS) * sxi + (offs_k % xS) * sxj
    acc = tl.zeros((BLOCK_M, BLOCK_K), dtype=tl.float32)
    rows = tl.zeros((BLOCK_M,), dtype=tl.float32)
    p_end = tl.minimum(P, (split + 1) * chunk)
    for n in range(N):
        for p0 in range(split * chunk, p_end, BLOCK_P):
            offs_p = p0 + tl.arange(0, BLOCK_P)
            in_p = offs_p < p_end
            g = tl.load(g_ptr + n * sgn + g_row[:, None] + ((offs_p // gPW) * sgh + (offs_p % gPW) * sgw)[None, :],
                        mask=(offs_m[:, None] < M) & in_p[None, :], other=0.0)
            x = tl.load(x_ptr + n * sxn + x_row[None, :] + ((offs_p // xPW) * sxh + (offs_p % xPW) * sxw)[:, None],
                        mask=(offs_k[None, :] < K) & in_p[:, None], other=0.0)
            if IEEE:
                acc += tl.dot(g, x, input_precision="ieee")
            else:
                acc += tl.dot(g, x)
            if ROWSUM:
                rows += tl.sum(g.to(tl.float32), axis=1)
    out = out_ptr + split * M * K + offs_m[:, None] * K + offs_k[None, :]
    tl.store(out, acc, mask=(offs_m[:, None] < M) & (offs_k[None, :] < K))
    if ROWSUM:
        if pid_k == 0:
            tl.store(rowsum_ptr + split * M + offs_m, rows, mask=offs_m < M)


def weight_grad(g: torch.Tensor, g_scale: int, x: torch.Tensor, x_scale: int, rowsum: bool = False):
    """(sum_n G[n] X[n]^T as [M, K], and sum_n,p G[n] as [M] when rowsum) in g's dtype."""
    N, Cg, Hg, Wg = g.shape
    M, K = Cg * g_scale * g_scale, x.shape[1] * x_scale * x_scale
    P = (Hg // g_scale) * (Wg // g_scale)
    block_m, block_k, block_p = (32, 32, 32) if triton_interpreted() else (32, 32, 64)
    splits = 1 if triton_interpreted() else max(1, min(64, triton.cdiv(N * P, 8192)))
    chunk = triton.cdiv(P, splits)
    splits = triton.cdiv(P, chunk)
    out = torch.empty(splits, M, K, device=g.device, dtype=torch.float32)
    rows = torch.empty(splits, M, device=g.device, dtype=torch.float32)
    grid = (triton.cdiv(K, block_k), triton.cdiv(M, block_m), splits)
    _weight_grad_kernel[grid](
        g, x, out, rows, M, K, N, P, chunk, *patch_layout(g, g_scale), *patch_layout(x, x_scale),
        ROWSUM=rowsum, IEEE=g.dtype == torch.float32, BLOCK_M=block_m, BLOCK_K=block_k, BLOCK_P=block_p,
    )
    return out.sum(0).to(g.dtype), rows.sum(0).to(g.dtype) if rowsum else None
