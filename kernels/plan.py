"""The kernels of the GPU inference plan (mdrn_fast/gpu_plan.py) that are not convolutions (kernels/conv.py):
all on channels-last (NHWC) maps.

- block_tail: a block's f = conv3x3(t, body2 composed with its share of FUSE) + each branch's RECONSTRUCT
  composed with its share of FUSE + the biases, in one pass, with the per-program channel sums of f (the
  attention mean). A program owns a region of LH x LW low-resolution pixels at the largest scale S, that is
  (LH S) x (LW S) output pixels, and visits them by sub-pixel phase (i, j): for one phase the rows are the pixels
  (S gh + i, S gw + j), every row reads the same composed reconstruct weight of each scale (the phase at scale s
  is (i mod s, j mod s)), so a reconstruct is one [rows, C] x [C, C] product, and the nine 3x3 taps read t from
  L1 after the first phase has brought the region in.
- degrade_pair: DEGRADE at scales 2 and 4 from one read of x (each 2x2 quadrant of a 4x4 patch is a pixel of d2).
- scale_add: x + f * a[n, c] (the attention's scale and the local residual), written into the block's slot.
- fuse_parts: the network's fusion 1x1 over the B block outputs, read from one stacked buffer.
"""
from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from mdrn_fast.registry import triton_interpreted

from ._gemm import AUTOTUNE_ENV
from ._scalars import split
from .conv import channel_block, conv_precision, conv_taps, hw_bucket, lrelu, nhwc_strides

# (LH, LW, warps): rows per phase LH * LW; the first is used when autotuning is off
_TAIL_CONFIGS = [(4, 8, 4), (4, 4, 4), (8, 8, 8)]


def _prune_tail(configs, named_args, **kwargs):
    """One config under the interpreter and with autotuning off; IEEE fp32 (products on FMA units, operands in
    registers) only the smallest region, the one that compiles without spills at 64 channels
    (tools/triton_compile_check.py)."""
    if kwargs["PRECISION"] == "ieee":
        return [min(configs, key=lambda c: c.kwargs["LH"] * c.kwargs["LW"])]
    if triton_interpreted() or os.environ.get(AUTOTUNE_ENV, "1") == "0":
        return configs[:1]
    return configs


@triton.jit
def _branch(acc, h_ptr, w_ptr, n, gh, gw, i, j, ok, shn, shh, shw, shc, ci, co,
            C: tl.constexpr, S: tl.constexpr, SB: tl.constexpr, PRECISION: tl.constexpr):
    """acc += h[n, ci, (S gh + i) // SB, (S gw + j) // SB] w[phase (i mod SB, j mod SB), ci, co]: the composed
    reconstruct of the branch at scale SB for the rows of phase (i, j)."""
    lh, lw = (gh * S + i) // SB, (gw * S + j) // SB
    mask = ok[:, None] & (ci < C)[None, :]
    a = tl.load(h_ptr + (n * shn + lh.to(tl.int64) * shh + lw.to(tl.int64) * shw)[:, None] + (ci * shc)[None, :],
                mask=mask, other=0.0)
    phase = (i % SB) * SB + j % SB
    w = tl.load(w_ptr + (phase * C + ci)[:, None] * C + co[None, :], mask=(ci < C)[:, None] & (co < C)[None, :],
                other=0.0)
    return acc + tl.dot(a.to(w.dtype), w, input_precision=PRECISION, out_dtype=acc.dtype)


@triton.autotune(
    configs=[triton.Config({"LH": lh, "LW": lw}, num_warps=nw, num_stages=1) for lh, lw, nw in _TAIL_CONFIGS],
    key=["C", "S", "SA", "SB", "HW_BUCKET", "PRECISION"], prune_configs_by={"early_config_prune": _prune_tail})
@triton.jit
def _block_tail_kernel(
    t_ptr, w_ptr, ha_ptr, wa_ptr, hb_ptr, wb_ptr, bias_ptr, out_ptr, sums_ptr,
    H, W, HW_BUCKET, REGIONS_MAX,               # REGIONS_MAX: regions per sample of the sums buffer
    stn, sth, stw, stc,                         # t strides (logical NCHW dims); out has the same
    san, sah, saw, sac, sbn, sbh, sbw, sbc,     # the branches' h strides
    C: tl.constexpr, S: tl.constexpr, SA: tl.constexpr, SB: tl.constexpr, HAS_CONV: tl.constexpr,
    PRECISION: tl.constexpr, LH: tl.constexpr, LW: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """out = conv3x3(t, w) + branch(ha, wa) + branch(hb, wb) + bias[phase]; sums[n, region, c] = sum of out over
    the region's pixels. SA, SB: the branches' scales (0: absent); S: the phase period, a multiple of both. Grid:
    (regions x samples)."""
    GH, GW = H // S, W // S
    regions_w = tl.cdiv(GW, LW)
    regions = tl.cdiv(GH, LH) * regions_w
    pid = tl.program_id(0)
    n = (pid // regions).to(tl.int64)
    rh, rw = (pid % regions) // regions_w, pid % regions_w
    r = tl.arange(0, LH * LW)
    gh, gw = rh * LH + r // LW, rw * LW + r % LW
    ok = (gh < GH) & (gw < GW)
    c = tl.arange(0, BLOCK_C)
    mask = ok[:, None] & (c < C)[None, :]
    sums = tl.zeros((BLOCK_C,), dtype=tl.float32)
    for phase in range(S * S):
        i, j = phase // S, phase % S
        ph, pw = gh * S + i, gw * S + j
        acc = tl.zeros((LH * LW, BLOCK_C), dtype=tl.float32)
        if HAS_CONV:
            row = n * stn + (ph - 1).to(tl.int64) * sth + (pw - 1).to(tl.int64) * stw
            acc = conv_taps(acc, t_ptr, t_ptr, w_ptr, row, ph - 1, pw - 1, ok, H, W, sth, stw, stc, c, 0.0, 0.0,
                            C, C, 3, False, PRECISION, BLOCK_C)
        if SA > 0:
            acc = _branch(acc, ha_ptr, wa_ptr, n, gh, gw, i, j, ok, san, sah, saw, sac, c, c, C, S, SA, PRECISION)
        if SB > 0:
            acc = _branch(acc, hb_ptr, wb_ptr, n, gh, gw, i, j, ok, sbn, sbh, sbw, sbc, c, c, C, S, SB, PRECISION)
        acc += tl.load(bias_ptr + phase * C + c, mask=c < C, other=0.0).to(tl.float32)[None, :]
        offs = (n * stn + ph.to(tl.int64) * sth + pw.to(tl.int64) * stw)[:, None] + (c * stc)[None, :]
        tl.store(out_ptr + offs, acc.to(out_ptr.dtype.element_ty), mask=mask)
        sums += tl.sum(tl.where(mask, acc, 0.0), axis=0)
    tl.store(sums_ptr + (n * REGIONS_MAX + pid % regions) * C + c, sums, mask=c < C)


def block_tail(t: torch.Tensor | None, w: torch.Tensor | None, branches, bias: torch.Tensor, period: int,
               out: torch.Tensor) -> torch.Tensor:
    """Writes the block's f into ``out`` (with t's strides) and returns its channel sums [N, C] in float32 (the
    regions' partials summed in a fixed order). ``branches``: up to two (h, w, scale), w [s*s, C, C]
    phase-major; ``bias`` [period**2, C] per phase; t, w: the full-resolution 3x3 part (None: absent)."""
    n, c, h, wd = out.shape
    assert len(branches) <= 2 and h % period == 0 and wd % period == 0
    assert t is None or t.stride() == out.stride()
    (ha, wa, sa), (hb, wb, sb) = list(branches) + [(None, None, 0)] * (2 - len(branches))
    gh, gw = h // period, wd // period
    regions = max(triton.cdiv(gh, lh) * triton.cdiv(gw, lw) for lh, lw, _ in _TAIL_CONFIGS)  # the most any has
    sums = torch.zeros(n, regions, c, device=out.device, dtype=torch.float32)
    grid = lambda meta: (triton.cdiv(gh, meta["LH"]) * triton.cdiv(gw, meta["LW"]) * n,)  # noqa: E731
    dtype = (w if w is not None else wa).dtype
    absent = bias  # any pointer, never read
    _block_tail_kernel[grid](
        t if t is not None else out, w if w is not None else absent, ha if ha is not None else absent,
        wa if wa is not None else absent, hb if hb is not None else absent, wb if wb is not None else absent,
        bias, out, sums, h, wd, hw_bucket(h * wd), regions, *nhwc_strides(out), *nhwc_strides(ha),
        *nhwc_strides(hb), C=c, S=period, SA=sa, SB=sb, HAS_CONV=t is not None, PRECISION=conv_precision(dtype),
        BLOCK_C=channel_block(c))
    return sums.sum(1)


@triton.jit
def _degrade_pair_kernel(
    x_ptr, w2_ptr, b2_ptr, w4_ptr, b4_ptr, d2_ptr, d4_ptr,
    H, W, sxn, sxh, sxw, sxc, s2n, s2h, s2w, s2c, s4n, s4h, s4w, s4c, slope_hi, slope_lo,
    C: tl.constexpr, PRECISION: tl.constexpr, LH: tl.constexpr, LW: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """d2 = lrelu(conv(x, w2, stride 2) + b2) and d4 = lrelu(conv(x, w4, stride 4) + b4) from one read of x: a
    program owns LH x LW pixels of d4, that is 4x4 patches of x; each 2x2 quadrant of a patch is also one pixel of
    d2. w2, w4 packed [s*s, C, C]. Grid: (regions x samples)."""
    GH, GW = H // 4, W // 4
    regions_w = tl.cdiv(GW, LW)
    regions = tl.cdiv(GH, LH) * regions_w
    pid = tl.program_id(0)
    n = (pid // regions).to(tl.int64)
    r = tl.arange(0, LH * LW)
    gh, gw = ((pid % regions) // regions_w) * LH + r // LW, (pid % regions_w) * LW + r % LW
    ok = (gh < GH) & (gw < GW)
    c = tl.arange(0, BLOCK_C)
    mask = ok[:, None] & (c < C)[None, :]
    w_mask = (c < C)[:, None] & (c < C)[None, :]
    row = n * sxn + (gh * 4).to(tl.int64) * sxh + (gw * 4).to(tl.int64) * sxw
    acc4 = tl.zeros((LH * LW, BLOCK_C), dtype=tl.float32)
    for q in tl.static_range(4):  # the quadrant (qy, qx) of the 4x4 patch: one pixel of d2
        qy, qx = q // 2, q % 2
        acc2 = tl.zeros((LH * LW, BLOCK_C), dtype=tl.float32)
        for tap in range(4):  # a loop, not unrolled: one load in flight per step
            dy, dx = tap // 2, tap % 2
            ky, kx = 2 * qy + dy, 2 * qx + dx
            a = tl.load(x_ptr + (row + ky * sxh + kx * sxw)[:, None] + (c * sxc)[None, :], mask=mask, other=0.0)
            w4 = tl.load(w4_ptr + ((ky * 4 + kx) * C + c)[:, None] * C + c[None, :], mask=w_mask, other=0.0)
            w2 = tl.load(w2_ptr + (tap * C + c)[:, None] * C + c[None, :], mask=w_mask, other=0.0)
            a = a.to(w4.dtype)
            acc4 += tl.dot(a, w4, input_precision=PRECISION, out_dtype=tl.float32)
            acc2 += tl.dot(a, w2, input_precision=PRECISION, out_dtype=tl.float32)
        acc2 = lrelu(acc2 + tl.load(b2_ptr + c, mask=c < C, other=0.0).to(tl.float32)[None, :], slope_hi, slope_lo)
        out2 = n * s2n + (2 * gh + qy).to(tl.int64) * s2h + (2 * gw + qx).to(tl.int64) * s2w
        tl.store(d2_ptr + out2[:, None] + (c * s2c)[None, :], acc2.to(d2_ptr.dtype.element_ty), mask=mask)
    acc4 = lrelu(acc4 + tl.load(b4_ptr + c, mask=c < C, other=0.0).to(tl.float32)[None, :], slope_hi, slope_lo)
    out4 = n * s4n + gh.to(tl.int64) * s4h + gw.to(tl.int64) * s4w
    tl.store(d4_ptr + out4[:, None] + (c * s4c)[None, :], acc4.to(d4_ptr.dtype.element_ty), mask=mask)


def degrade_pair(x: torch.Tensor, w2, b2, w4, b4, slope: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(DEGRADE at scale 2, at scale 4) of x [N, C, H, W] (H, W multiples of 4) from one read of it, channels-last;
    w2, w4 packed (kernels/conv.py pack)."""
    n, c, h, w = x.shape
    assert h % 4 == 0 and w % 4 == 0 and w2.shape == (4, c, c) and w4.shape == (16, c, c)
    d2 = torch.empty((n, c, h // 2, w // 2), device=x.device, dtype=w2.dtype, memory_format=torch.channels_last)
    d4 = torch.empty((n, c, h // 4, w // 4), device=x.device, dtype=w2.dtype, memory_format=torch.channels_last)
    lh, lw = 4, 8
    precision = conv_precision(w2.dtype)
    _degrade_pair_kernel[(triton.cdiv(h // 4, lh) * triton.cdiv(w // 4, lw) * n,)](
        x, w2, b2, w4, b4, d2, d4, h, w, *nhwc_strides(x), *nhwc_strides(d2), *nhwc_strides(d4), *split(slope),
        C=c, PRECISION=precision, LH=lh, LW=lw, BLOCK_C=channel_block(c), num_warps=4)
    return d2, d4


@triton.jit
def _scale_add_kernel(x_ptr, f_ptr, a_ptr, out_ptr, total, C, HWC, BLOCK: tl.constexpr):
    """out = x + f * a[n, c] over dense channels-last maps (flat index e: n = e // HWC, c = e % C)."""
    e = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = e < total
    a = tl.load(a_ptr + (e // HWC) * C + e % C, mask=mask, other=0.0)
    v = tl.load(x_ptr + e, mask=mask, other=0.0).to(tl.float32) + tl.load(f_ptr + e, mask=mask, other=0.0) * a
    tl.store(out_ptr + e, v.to(out_ptr.dtype.element_ty), mask=mask)


def _dense_channels_last(t: torch.Tensor) -> bool:
    n, c, h, w = t.shape
    return t.stride() == (h * w * c, 1, w * c, c)


def scale_add(x: torch.Tensor, f: torch.Tensor, a: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """out = x + f * a[:, :, None, None], all dense channels-last; a [N, C] float32."""
    assert _dense_channels_last(x) and _dense_channels_last(f) and _dense_channels_last(out)
    n, c, h, w = x.shape
    block = 1024
    _scale_add_kernel[(triton.cdiv(x.numel(), block),)](x, f, a.float().contiguous(), out, x.numel(), c, h * w * c,
                                                       BLOCK=block)
    return out


@triton.jit
def _fuse_parts_kernel(p_ptr, w_ptr, b_ptr, out_ptr, P, part_stride, PARTS: tl.constexpr, C: tl.constexpr,
                       COUT: tl.constexpr, PRECISION: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr,
                       BLOCK_CO: tl.constexpr):
    """out[p, co] = b[co] + sum_i parts[i, p, :] w[i, :, co] over P pixels of dense channels-last maps."""
    p = tl.program_id(0).to(tl.int64) * BLOCK_P + tl.arange(0, BLOCK_P)
    c, co = tl.arange(0, BLOCK_C), tl.arange(0, BLOCK_CO)
    acc = tl.zeros((BLOCK_P, BLOCK_CO), dtype=tl.float32)
    for i in range(PARTS):
        a = tl.load(p_ptr + i * part_stride + p[:, None] * C + c[None, :], mask=(p < P)[:, None] & (c < C)[None, :],
                    other=0.0)
        w = tl.load(w_ptr + (i * C + c)[:, None] * COUT + co[None, :], mask=(c < C)[:, None] & (co < COUT)[None, :],
                    other=0.0)
        acc += tl.dot(a.to(w.dtype), w, input_precision=PRECISION, out_dtype=tl.float32)
    acc += tl.load(b_ptr + co, mask=co < COUT, other=0.0).to(tl.float32)[None, :]
    tl.store(out_ptr + p[:, None] * COUT + co[None, :], acc.to(out_ptr.dtype.element_ty),
             mask=(p < P)[:, None] & (co < COUT)[None, :])


def fuse_parts(parts: torch.Tensor, w: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """out [N, COUT, H, W] (dense channels-last) = the 1x1 over the B stacked maps ``parts`` [B, N, H, W, C] with
    w [B, C, COUT] and b [COUT]."""
    parts_n, n, h, wd, c = parts.shape
    assert parts.is_contiguous() and _dense_channels_last(out)
    p = n * h * wd
    precision = conv_precision(w.dtype)
    block_p = 64 if precision == "ieee" else 128  # FMA products hold their operands in registers: fewer rows
    _fuse_parts_kernel[(triton.cdiv(p, block_p),)](
        parts, w, b, out, p, parts[0].numel(), PARTS=parts_n, C=c, COUT=w.shape[2], PRECISION=precision,
        BLOCK_P=block_p, BLOCK_C=channel_block(c), BLOCK_CO=channel_block(w.shape[2]), num_warps=4)
    return out
