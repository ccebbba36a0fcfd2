"""Distillation losses in Triton: tiled FAKD (never builds the HW x HW affinities), one-pass l1 / l2 whose
backward recomputes from the inputs, and the channel-energy pass of attention transfer (math in
csrc/distill.cpp).

FAKD, per sample n, with U = columns of F normalized over channels ([C, HW], done first, O(C HW)):
    A = U^T U,  D = 1 / (N HW^2) sum_n sum_{p,q} |A_s[p, q] - A_t[p, q]|
Forward: each program takes a tile P of positions and walks tiles Q, forming A_s[P, Q] and A_t[P, Q] with
two small GEMMs and accumulating |difference|: memory O(C HW) instead of O(HW^2), as flash attention.
Backward: G = sign(A_s - A_t) is symmetric and sum_{p,q} G A = sum_{p,q} G[p, q] u_p . u_q, so
    dL/dU_s[:, p] = 2 / (N HW^2) * g * sum_q G[p, q] U_s[:, q]   (and minus that with U_t for the teacher),
recomputing the tiles of G (their signs are all that is needed); then through the column normalization:
    df = (du - u (u . du)) / max(||f||, eps).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from mdrn_fast.distill.losses import EPS, at_from_energy
from mdrn_fast.op_wiring import opmath, wire
from mdrn_fast.registry import register, triton_interpreted


def _blocks(hw: int):
    return (16, 16) if triton_interpreted() else (64, 64)


@triton.jit
def _positions(base, offs, HW, C, BC: tl.constexpr):
    """U[:, offs]^T of one sample as [len(offs), BC]; zero past C channels and past HW positions."""
    c = tl.arange(0, BC)
    return tl.load(base + c[None, :] * HW + offs[:, None], mask=(c[None, :] < C) & (offs[:, None] < HW), other=0.0)


@triton.jit
def _columns(base, offs, HW, C, BC: tl.constexpr):
    """U[:, offs] of one sample as [BC, len(offs)]; zero past C channels and past HW positions."""
    c = tl.arange(0, BC)
    return tl.load(base + c[:, None] * HW + offs[None, :], mask=(c[:, None] < C) & (offs[None, :] < HW), other=0.0)


@triton.jit
def _fakd_forward_kernel(us_ptr, ut_ptr, partial_ptr, HW, CS, CT,
                         BLOCK_P: tl.constexpr, BLOCK_Q: tl.constexpr, BCS: tl.constexpr, BCT: tl.constexpr):
    """partial[n, p-tile] = sum over q of |U_s[:, P]^T U_s[:, Q] - U_t[:, P]^T U_t[:, Q]|; U [N, C, HW] contiguous."""
    n, pid = tl.program_id(0), tl.program_id(1)
    offs_p = pid * BLOCK_P + tl.arange(0, BLOCK_P)
    us_base, ut_base = us_ptr + n * CS * HW, ut_ptr + n * CT * HW
    usp, utp = _positions(us_base, offs_p, HW, CS, BCS), _positions(ut_base, offs_p, HW, CT, BCT)
    acc = tl.zeros((BLOCK_P, BLOCK_Q), dtype=tl.float32)
    for q0 in range(0, HW, BLOCK_Q):
        offs_q = q0 + tl.arange(0, BLOCK_Q)
        usq, utq = _columns(us_base, offs_q, HW, CS, BCS), _columns(ut_base, offs_q, HW, CT, BCT)
        diff = tl.dot(usp, usq, input_precision="ieee") - tl.dot(utp, utq, input_precision="ieee")
        acc += tl.abs(diff)  # padded rows/columns are zero in both: they add nothing
    tl.store(partial_ptr + n * tl.num_programs(1) + pid, tl.sum(tl.sum(acc, axis=1), axis=0))


@triton.jit
def _fakd_backward_kernel(us_ptr, ut_ptr, dus_ptr, dut_ptr, HW, CS, CT, scale,
                          BLOCK_P: tl.constexpr, BLOCK_Q: tl.constexpr, BCS: tl.constexpr, BCT: tl.constexpr):
    """dU_s[:, P] = scale * sum_q G[P, Q] U_s[:, Q]^T, dU_t[:, P] = -scale * sum_q G[P, Q] U_t[:, Q]^T with
    G = sign(A_s - A_t) recomputed tile by tile."""
    n, pid = tl.program_id(0), tl.program_id(1)
    offs_p = pid * BLOCK_P + tl.arange(0, BLOCK_P)
    us_base, ut_base = us_ptr + n * CS * HW, ut_ptr + n * CT * HW
    usp, utp = _positions(us_base, offs_p, HW, CS, BCS), _positions(ut_base, offs_p, HW, CT, BCT)
    acc_s = tl.zeros((BLOCK_P, BCS), dtype=tl.float32)
    acc_t = tl.zeros((BLOCK_P, BCT), dtype=tl.float32)
    for q0 in range(0, HW, BLOCK_Q):
        offs_q = q0 + tl.arange(0, BLOCK_Q)
        usq, utq = _columns(us_base, offs_q, HW, CS, BCS), _columns(ut_base, offs_q, HW, CT, BCT)
        diff = tl.dot(usp, usq, input_precision="ieee") - tl.dot(utp, utq, input_precision="ieee")
        g = tl.where(diff > 0, 1.0, tl.where(diff < 0, -1.0, 0.0))
        acc_s += tl.dot(g, tl.trans(usq), input_precision="ieee")
        acc_t += tl.dot(g, tl.trans(utq), input_precision="ieee")
    cs, ct = tl.arange(0, BCS), tl.arange(0, BCT)
    tl.store(dus_ptr + n * CS * HW + cs[None, :] * HW + offs_p[:, None], acc_s * scale,
             mask=(cs[None, :] < CS) & (offs_p[:, None] < HW))
    tl.store(dut_ptr + n * CT * HW + ct[None, :] * HW + offs_p[:, None], -acc_t * scale,
             mask=(ct[None, :] < CT) & (offs_p[:, None] < HW))


def _units(f: torch.Tensor):
    """(U = columns of f [N, C, HW] over their norms, norms) in float32."""
    f = f.float().flatten(2)
    norm = f.norm(dim=1, keepdim=True).clamp_min(EPS)
    return (f / norm).contiguous(), norm


def _normalize_backward(du, u, norm):
    return (du - u * (u * du).sum(1, keepdim=True)) / norm


def _cpad(c: int) -> int:
    return max(16, triton.next_power_of_2(c))


@torch.library.custom_op("mdrn_fast_triton::fakd", mutates_args=())
def _fakd(fs: torch.Tensor, ft: torch.Tensor) -> torch.Tensor:
    us, _ = _units(fs)
    ut, _ = _units(ft)
    N, CS, HW = us.shape
    bp, bq = _blocks(HW)
    tiles = triton.cdiv(HW, bp)
    partial = torch.empty(N, tiles, device=fs.device, dtype=torch.float32)
    _fakd_forward_kernel[(N, tiles)](us, ut, partial, HW, CS, ut.shape[1], BLOCK_P=bp, BLOCK_Q=bq,
                                     BCS=_cpad(CS), BCT=_cpad(ut.shape[1]))
    return (partial.sum() / (N * HW * HW)).to(fs.dtype)


@torch.library.custom_op("mdrn_fast_triton::fakd_backward", mutates_args=())
def _fakd_backward(grad: torch.Tensor, fs: torch.Tensor, ft: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    us, ns = _units(fs)
    ut, nt = _units(ft)
    N, CS, HW = us.shape
    bp, bq = _blocks(HW)
    dus, dut = torch.empty_like(us), torch.empty_like(ut)
    scale = 2.0 / (N * HW * HW)  # times grad below: a tensor, so no device-to-host sync
    _fakd_backward_kernel[(N, triton.cdiv(HW, bp))](us, ut, dus, dut, HW, CS, ut.shape[1], scale, BLOCK_P=bp,
                                                    BLOCK_Q=bq, BCS=_cpad(CS), BCT=_cpad(ut.shape[1]))
    g = grad.float()
    return ((_normalize_backward(dus, us, ns) * g).view(fs.shape).to(fs.dtype),
            (_normalize_backward(dut, ut, nt) * g).view(ft.shape).to(ft.dtype))


@triton.jit
def _lp_forward_kernel(a_ptr, b_ptr, partial_ptr, total, SQUARE: tl.constexpr, BLOCK: tl.constexpr):
    """partial[chunk] = sum of |a - b| (or (a - b)^2) over the chunk: one read of each input."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < total
    d = tl.load(a_ptr + offs, mask=mask, other=0.0).to(tl.float32) - tl.load(b_ptr + offs, mask=mask,
                                                                              other=0.0).to(tl.float32)
    tl.store(partial_ptr + tl.program_id(0), tl.sum(d * d if SQUARE else tl.abs(d), axis=0))


@triton.jit
def _lp_backward_kernel(grad_ptr, a_ptr, b_ptr, out_ptr, total, SQUARE: tl.constexpr, BLOCK: tl.constexpr):
    """out = grad / numel * (2 (a - b) or sign(a - b)), recomputed from the inputs (nothing stored forward)."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < total
    d = tl.load(a_ptr + offs, mask=mask, other=0.0).to(tl.float32) - tl.load(b_ptr + offs, mask=mask,
                                                                              other=0.0).to(tl.float32)
    g = 2.0 * d if SQUARE else tl.where(d > 0, 1.0, tl.where(d < 0, -1.0, 0.0))
    scale = tl.load(grad_ptr).to(tl.float32) / total
    tl.store(out_ptr + offs, (g * scale).to(out_ptr.dtype.element_ty), mask=mask)


_LP_BLOCK = 4096  # fixed chunks: the same sum whatever the device


@torch.library.custom_op("mdrn_fast_triton::lp_distance", mutates_args=())
def _lp(fs: torch.Tensor, ft: torch.Tensor, square: bool) -> torch.Tensor:
    a, b = fs.contiguous(), ft.contiguous()
    parts = torch.empty(triton.cdiv(a.numel(), _LP_BLOCK), device=a.device, dtype=torch.float32)
    _lp_forward_kernel[(parts.numel(),)](a, b, parts, a.numel(), SQUARE=square, BLOCK=_LP_BLOCK)
    return (parts.sum() / a.numel()).to(fs.dtype)


@torch.library.custom_op("mdrn_fast_triton::lp_distance_backward", mutates_args=())
def _lp_backward(grad: torch.Tensor, fs: torch.Tensor, ft: torch.Tensor, square: bool) -> torch.Tensor:
    a, b = fs.contiguous(), ft.contiguous()
    out = torch.empty_like(a)
    _lp_backward_kernel[(triton.cdiv(a.numel(), _LP_BLOCK),)](grad.float().contiguous(), a, b, out, a.numel(),
                                                             SQUARE=square, BLOCK=_LP_BLOCK)
    return out


@triton.jit
def _energy_kernel(f_ptr, out_ptr, C, HW, BLOCK: tl.constexpr):
    """out[n, P] = mean over c of f[n, c, P]^2 for a tile P of positions: one read of f."""
    n, offs = tl.program_id(0), tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < HW
    acc = tl.zeros((BLOCK,), dtype=out_ptr.dtype.element_ty)  # float32, or float64 for float64 features
    for c in range(0, C):
        v = tl.load(f_ptr + (n * C + c) * HW + offs, mask=mask, other=0.0).to(out_ptr.dtype.element_ty)
        acc += v * v
    tl.store(out_ptr + n * HW + offs, acc / C, mask=mask)


@triton.jit
def _energy_backward_kernel(grad_ptr, f_ptr, out_ptr, C, HW, BLOCK: tl.constexpr):
    """out[n, c, P] = f[n, c, P] * grad[n, P] * 2 / C, one (n, c) plane per program row."""
    plane, offs = tl.program_id(0), tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < HW
    g = tl.load(grad_ptr + (plane // C) * HW + offs, mask=mask, other=0.0)
    v = tl.load(f_ptr + plane * HW + offs, mask=mask, other=0.0).to(g.dtype)
    tl.store(out_ptr + plane * HW + offs, (v * g * (2.0 / C)).to(out_ptr.dtype.element_ty), mask=mask)


_ENERGY_BLOCK = 256


@torch.library.custom_op("mdrn_fast_triton::channel_energy", mutates_args=())
def _energy(f: torch.Tensor) -> torch.Tensor:
    x = f.contiguous()
    N, C, H, W = x.shape
    out = torch.empty(N, H * W, device=x.device, dtype=opmath(x.dtype))
    _energy_kernel[(N, triton.cdiv(H * W, _ENERGY_BLOCK))](x, out, C, H * W, BLOCK=_ENERGY_BLOCK)
    return out


@torch.library.custom_op("mdrn_fast_triton::channel_energy_backward", mutates_args=())
def _energy_backward(grad: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    x = f.contiguous()
    N, C, H, W = x.shape
    out = torch.empty_like(x)
    grad = grad.to(opmath(x.dtype)).contiguous()
    _energy_backward_kernel[(N * C, triton.cdiv(H * W, _ENERGY_BLOCK))](grad, x, out, C, H * W, BLOCK=_ENERGY_BLOCK)
    return out


wire("mdrn_fast_triton", "lp_distance", "channel_energy", "fakd")


@register("distill_fakd", "triton")
def fakd(fs, ft):
    return _fakd(fs, ft)


@register("distill_l1", "triton")
def l1(fs, ft):
    return _lp(fs, ft, False)


@register("distill_l2", "triton")
def l2(fs, ft):
    return _lp(fs, ft, True)


@register("distill_at", "triton")
def at(fs, ft):
    return at_from_energy(_energy(fs), _energy(ft))
