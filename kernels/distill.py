"""Distillation losses in Triton: tiled FAKD (never builds the HW x HW affinities), one-pass l1 / l2 whose
backward recomputes from the inputs, and the channel-energy pass of attention transfer (math in
csrc/distill.cpp).

FAKD, per sample n, with U = columns of F normalized over channels ([C, HW], done first, O(C HW)):
    A = U^T U,  D = 1 / (N HW^2) sum_n sum_{p,q} |A_s[p, q] - A_t[p, q]|
Forward: each program takes a tile P of positions and walks the tiles Q >= P (A is symmetric: the others
count twice), forming A_s[P, Q] and A_t[P, Q] with small GEMMs over channel chunks and accumulating
|difference|: memory O(C HW) instead of O(HW^2), as flash attention.
Backward: G = sign(A_s - A_t) is symmetric and sum_{p,q} G A = sum_{p,q} G[p, q] u_p . u_q, so
    dL/dU_s[:, p] = 2 / (N HW^2) * g * sum_q G[p, q] U_s[:, q]   (and minus that with U_t for the teacher),
recomputing the tiles of G (their signs are all that is needed), one chunk of output channels per program
(so that the tiles fit in registers at any channel count); then through the column normalization:
    df = (du - u (u . du)) / max(||f||, eps).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from mdrn_fast.reference import EPS, at_from_energy
from mdrn_fast.op_wiring import opmath, wire
from mdrn_fast.registry import register, triton_interpreted

from ._gemm import dot_precision
from ._scalars import compute_type


def _fakd_blocks(precision: str) -> tuple[int, int]:
    """(positions per tile, most channels per GEMM chunk): small enough that the tiles stay in registers at any
    channel count (the channel loop takes the rest; IEEE fp32 dots run on FMA units, whose operands take 8
    registers per channel), big enough for tensor cores. Checked by tools/triton_compile_check.py."""
    if triton_interpreted():
        return 16, 16
    return 64, 32 if precision == "tf32" else 16


@triton.jit
def _affinity(base, offs_p, offs_q, HW, C, BC: tl.constexpr, PRECISION: tl.constexpr):
    """A[P, Q] = U[:, P]^T U[:, Q] of one sample (U [C, HW] at base), over chunks of BC channels; the rows and
    columns past HW are zero."""
    acc = tl.zeros((offs_p.shape[0], offs_q.shape[0]), dtype=tl.float32)
    for c0 in range(0, C, BC):
        c = c0 + tl.arange(0, BC)
        up = tl.load(base + c[None, :] * HW + offs_p[:, None], mask=(c[None, :] < C) & (offs_p[:, None] < HW),
                     other=0.0)
        uq = tl.load(base + c[:, None] * HW + offs_q[None, :], mask=(c[:, None] < C) & (offs_q[None, :] < HW),
                     other=0.0)
        acc += tl.dot(up, uq, input_precision=PRECISION)
    return acc


@triton.jit
def _fakd_forward_kernel(us_ptr, ut_ptr, partial_ptr, HW, CS, CT, BLOCK: tl.constexpr, BC: tl.constexpr,
                         PRECISION: tl.constexpr):
    """partial[n, p-tile] = sum over q >= p of w |A_s[P, Q] - A_t[P, Q]| (w = 2 off the diagonal: A is symmetric,
    so half the tiles give the whole sum); U [N, C, HW] contiguous. Grid: (p-tiles, N)."""
    pid, n = tl.program_id(0), tl.program_id(1).to(tl.int64)
    offs_p = pid * BLOCK + tl.arange(0, BLOCK)
    us_base, ut_base = us_ptr + n * CS * HW, ut_ptr + n * CT * HW
    acc = tl.zeros((BLOCK, BLOCK), dtype=tl.float32)
    for q0 in range(pid * BLOCK, HW, BLOCK):
        offs_q = q0 + tl.arange(0, BLOCK)
        diff = _affinity(us_base, offs_p, offs_q, HW, CS, BC, PRECISION) - \
            _affinity(ut_base, offs_p, offs_q, HW, CT, BC, PRECISION)
        acc += tl.abs(diff) * tl.where(q0 == pid * BLOCK, 1.0, 2.0)
    tl.store(partial_ptr + n * tl.num_programs(0) + pid, tl.sum(tl.sum(acc, axis=1), axis=0))


@triton.jit(do_not_specialize=["CS", "CT"])  # both branches below must see them as the same type
def _fakd_backward_kernel(us_ptr, ut_ptr, dus_ptr, dut_ptr, HW, CS, CT, scale, BLOCK: tl.constexpr,
                          BC: tl.constexpr, PRECISION: tl.constexpr):
    """One chunk of BC output channels, of dU_s or of dU_t, for a tile P of positions:
    dU_s[c, P] = scale * sum_q G[P, Q] U_s[c, Q]^T and dU_t[c, P] = -scale * sum_q G[P, Q] U_t[c, Q]^T, with
    G = sign(A_s - A_t) recomputed tile by tile. Grid: (p-tiles, N, chunks of C_s + chunks of C_t)."""
    pid, n, chunk = tl.program_id(0), tl.program_id(1).to(tl.int64), tl.program_id(2)
    offs_p = pid * BLOCK + tl.arange(0, BLOCK)
    us_base, ut_base = us_ptr + n * CS * HW, ut_ptr + n * CT * HW
    chunks_s = tl.cdiv(CS, BC)
    if chunk < chunks_s:
        x_base, dx_base, cx, c0, sign = us_base, dus_ptr + n * CS * HW, CS, chunk * BC, scale
    else:
        x_base, dx_base, cx, c0, sign = ut_base, dut_ptr + n * CT * HW, CT, (chunk - chunks_s) * BC, -scale
    c = c0 + tl.arange(0, BC)
    acc = tl.zeros((BLOCK, BC), dtype=tl.float32)
    for q0 in range(0, HW, BLOCK):
        offs_q = q0 + tl.arange(0, BLOCK)
        diff = _affinity(us_base, offs_p, offs_q, HW, CS, BC, PRECISION) - \
            _affinity(ut_base, offs_p, offs_q, HW, CT, BC, PRECISION)
        g = tl.where(diff > 0, 1.0, tl.where(diff < 0, -1.0, 0.0))
        xq = tl.load(x_base + c[None, :] * HW + offs_q[:, None], mask=(c[None, :] < cx) & (offs_q[:, None] < HW),
                     other=0.0)
        acc += tl.dot(g, xq, input_precision=PRECISION)
    tl.store(dx_base + c[None, :] * HW + offs_p[:, None], acc * sign, mask=(c[None, :] < cx) & (offs_p[:, None] < HW))


def _units(f: torch.Tensor):
    """(U = columns of f [N, C, HW] over their norms, norms) in float32."""
    f = f.float().flatten(2)
    norm = f.norm(dim=1, keepdim=True).clamp_min(EPS)
    return (f / norm).contiguous(), norm


def _normalize_backward(du, u, norm):
    return (du - u * (u * du).sum(1, keepdim=True)) / norm


# 8 warps, and no software pipelining of the channel loop: pipelining it spilled (ptxas, sm_90)
_FAKD_LAUNCH = dict(num_warps=8, num_stages=1)


def _channel_block(cs: int, ct: int, most: int) -> int:
    return max(16, min(most, triton.next_power_of_2(max(cs, ct))))


@torch.library.custom_op("mdrn_fast_triton::fakd", mutates_args=())
def _fakd(fs: torch.Tensor, ft: torch.Tensor) -> torch.Tensor:
    us, _ = _units(fs)
    ut, _ = _units(ft)
    N, CS, HW = us.shape
    precision = dot_precision(torch.float32)
    block, most = _fakd_blocks(precision)
    tiles = triton.cdiv(HW, block)
    partial = torch.empty(N, tiles, device=fs.device, dtype=torch.float32)
    _fakd_forward_kernel[(tiles, N)](us, ut, partial, HW, CS, ut.shape[1], BLOCK=block,
                                     BC=_channel_block(CS, ut.shape[1], most), PRECISION=precision, **_FAKD_LAUNCH)
    return (partial.sum() / (N * HW * HW)).to(fs.dtype)


@torch.library.custom_op("mdrn_fast_triton::fakd_backward", mutates_args=())
def _fakd_backward(grad: torch.Tensor, fs: torch.Tensor, ft: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    us, ns = _units(fs)
    ut, nt = _units(ft)
    N, CS, HW = us.shape
    CT = ut.shape[1]
    precision = dot_precision(torch.float32)
    block, most = _fakd_blocks(precision)
    bc = _channel_block(CS, CT, most)
    dus, dut = torch.empty_like(us), torch.empty_like(ut)
    scale = 2.0 / (N * HW * HW)  # times grad below: a tensor, so no device-to-host sync
    grid = (triton.cdiv(HW, block), N, triton.cdiv(CS, bc) + triton.cdiv(CT, bc))
    _fakd_backward_kernel[grid](us, ut, dus, dut, HW, CS, CT, scale, BLOCK=block, BC=bc, PRECISION=precision,
                                **_FAKD_LAUNCH)
    g = grad.float()
    return ((_normalize_backward(dus, us, ns) * g).view(fs.shape).to(fs.dtype),
            (_normalize_backward(dut, ut, nt) * g).view(ft.shape).to(ft.dtype))


@triton.jit
def _lp_distance_kernel(a_ptr, b_ptr, partial_ptr, total, SQUARE: tl.constexpr, ACC: tl.constexpr,
                        BLOCK: tl.constexpr):
    """partial[chunk] = sum of |a - b| (or (a - b)^2) over the chunk, in ACC: one read of each input."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < total
    d = tl.load(a_ptr + offs, mask=mask, other=0.0).to(ACC) - tl.load(b_ptr + offs, mask=mask, other=0.0).to(ACC)
    tl.store(partial_ptr + tl.program_id(0), tl.sum(d * d if SQUARE else tl.abs(d), axis=0))


@triton.jit
def _lp_distance_backward_kernel(grad_ptr, a_ptr, b_ptr, out_ptr, total, SQUARE: tl.constexpr, ACC: tl.constexpr,
                                 BLOCK: tl.constexpr):
    """out = grad / numel * (2 (a - b) or sign(a - b)), recomputed from the inputs (nothing stored forward)."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < total
    d = tl.load(a_ptr + offs, mask=mask, other=0.0).to(ACC) - tl.load(b_ptr + offs, mask=mask, other=0.0).to(ACC)
    g = 2.0 * d if SQUARE else tl.where(d > 0, 1.0, tl.where(d < 0, -1.0, 0.0)).to(ACC)
    scale = tl.load(grad_ptr).to(ACC) / total
    tl.store(out_ptr + offs, (g * scale).to(out_ptr.dtype.element_ty), mask=mask)


_LP_BLOCK = 4096  # fixed chunks: the same sum whatever the device


@torch.library.custom_op("mdrn_fast_triton::lp_distance", mutates_args=())
def _lp_distance(fs: torch.Tensor, ft: torch.Tensor, square: bool) -> torch.Tensor:
    a, b = fs.contiguous(), ft.contiguous()
    parts = torch.empty(triton.cdiv(a.numel(), _LP_BLOCK), device=a.device, dtype=opmath(a.dtype))
    _lp_distance_kernel[(parts.numel(),)](a, b, parts, a.numel(), SQUARE=square, ACC=compute_type(a.dtype),
                                          BLOCK=_LP_BLOCK)
    return (parts.sum() / a.numel()).to(fs.dtype)


@torch.library.custom_op("mdrn_fast_triton::lp_distance_backward", mutates_args=())
def _lp_distance_backward(grad: torch.Tensor, fs: torch.Tensor, ft: torch.Tensor, square: bool) -> torch.Tensor:
    a, b = fs.contiguous(), ft.contiguous()
    out = torch.empty_like(a)
    grid = (triton.cdiv(a.numel(), _LP_BLOCK),)
    _lp_distance_backward_kernel[grid](grad.to(opmath(a.dtype)).contiguous(), a, b, out, a.numel(), SQUARE=square,
                                       ACC=compute_type(a.dtype), BLOCK=_LP_BLOCK)
    return out


@triton.jit
def _channel_energy_kernel(f_ptr, out_ptr, C, HW, BLOCK: tl.constexpr):
    """out[n, P] = mean over c of f[n, c, P]^2 for a tile P of positions: one read of f. 1-D grid over
    (n, tile): no axis limit of 65535 to hit at large HW."""
    tiles = tl.cdiv(HW, BLOCK)
    n, offs = (tl.program_id(0) // tiles).to(tl.int64), (tl.program_id(0) % tiles) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < HW
    acc = tl.zeros((BLOCK,), dtype=out_ptr.dtype.element_ty)  # float32, or float64 for float64 features
    for c in range(0, C):
        v = tl.load(f_ptr + (n * C + c) * HW + offs, mask=mask, other=0.0).to(out_ptr.dtype.element_ty)
        acc += v * v
    tl.store(out_ptr + n * HW + offs, acc / C, mask=mask)


@triton.jit
def _channel_energy_backward_kernel(grad_ptr, f_ptr, out_ptr, C, HW, BLOCK: tl.constexpr):
    """out[n, c, P] = f[n, c, P] * grad[n, P] * 2 / C; 1-D grid over ((n, c) plane, tile)."""
    tiles = tl.cdiv(HW, BLOCK)
    plane, offs = (tl.program_id(0) // tiles).to(tl.int64), (tl.program_id(0) % tiles) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < HW
    g = tl.load(grad_ptr + (plane // C) * HW + offs, mask=mask, other=0.0)
    v = tl.load(f_ptr + plane * HW + offs, mask=mask, other=0.0).to(g.dtype)
    tl.store(out_ptr + plane * HW + offs, (v * g * 2.0 / C).to(out_ptr.dtype.element_ty), mask=mask)  # in g's dtype


_ENERGY_BLOCK = 256


@torch.library.custom_op("mdrn_fast_triton::channel_energy", mutates_args=())
def _channel_energy(f: torch.Tensor) -> torch.Tensor:
    x = f.contiguous()
    N, C, H, W = x.shape
    out = torch.empty(N, H * W, device=x.device, dtype=opmath(x.dtype))
    _channel_energy_kernel[(N * triton.cdiv(H * W, _ENERGY_BLOCK),)](x, out, C, H * W, BLOCK=_ENERGY_BLOCK)
    return out


@torch.library.custom_op("mdrn_fast_triton::channel_energy_backward", mutates_args=())
def _channel_energy_backward(grad: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    x = f.contiguous()
    N, C, H, W = x.shape
    out = torch.empty_like(x)
    grad = grad.to(opmath(x.dtype)).contiguous()
    grid = (N * C * triton.cdiv(H * W, _ENERGY_BLOCK),)
    _channel_energy_backward_kernel[grid](grad, x, out, C, H * W, BLOCK=_ENERGY_BLOCK)
    return out


wire("mdrn_fast_triton", "lp_distance", "channel_energy", "fakd")


@register("distill_fakd", "triton")
def fakd(fs, ft):
    if fs.dtype == torch.float64 or ft.dtype == torch.float64:  # its tile GEMMs are float32 (TF32 where allowed)
        raise TypeError("fakd: the Triton kernel computes in float32; for float64 features use backend 'cuda', "
                        "'cpu' or 'torch'")
    return _fakd(fs, ft)


@register("distill_l1", "triton")
def l1(fs, ft):
    return _lp_distance(fs, ft, False)


@register("distill_l2", "triton")
def l2(fs, ft):
    return _lp_distance(fs, ft, True)


@register("distill_at", "triton")
def at(fs, ft):
    return at_from_energy(_channel_energy(fs), _channel_energy(ft))
