"""MDRN inference on the CPU as one plan: channels-last maps, oneDNN convolutions with their bias, LeakyReLU or
residual add fused (post-ops), and the network's linear layers composed so that fewer full-resolution passes
remain. The `cpu` backend (and `auto` on CPU tensors) runs float32 inference through it; training, other dtypes
and other devices run op by op.

Composed (mdrn_fast/composition.py): a block's body2 with its share of the fusion 1x1 (one 3x3 convolution), each
reconstruct with its share (one low-resolution 1x1, its s*s*C outputs ordered (i, j, c) so that the shuffle
reads C contiguous values); and the network's fusion 1x1 over the B block outputs accumulated block by block
(a C x C GEMM each, added into the running sum in place), so that block outputs need not be kept.

1x1 convolutions are GEMMs on channels-last memory (MKL: 3-5x faster than oneDNN's 1x1 convolutions here).

A block is then, with x its input:
    t = lrelu(conv3x3(x)),  per scale s: h_s = lrelu(conv3x3(lrelu(conv_s(x))))
    f = conv3x3(t) + reconstruct_sum(h_s)   (the 1x1s, shuffles and sum in one pass, then added into)
    x + f * sigmoid(mlp(mean f))
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from . import registry
from .composition import compose_block

_CL = torch.channels_last


def _conv(x: Tensor, w: Tensor, b: Tensor | None, padding: int = 0, stride: int = 1, slope: float | None = None,
          add: Tensor | None = None, into: Tensor | None = None) -> Tensor:
    """conv2d(x, w, b) with LeakyReLU(slope), `+ add`, or `+ into` (in place: written into it) fused into it by
    oneDNN; channels-last in and out."""
    mk = torch.ops.mkldnn
    pad, st, dil = [padding, padding], [stride, stride], [1, 1]
    if into is not None:
        return mk._convolution_pointwise_.binary(into, x, w, b, pad, st, dil, 1, "add", None, None, [], None)
    if add is not None:
        return mk._convolution_pointwise.binary(x, add, w, b, pad, st, dil, 1, "add", None, None, [], None)
    if slope is None:
        return mk._convolution_pointwise(x, w, b, pad, st, dil, 1, "none", [], "")
    return mk._convolution_pointwise(x, w, b, pad, st, dil, 1, "leaky_relu", [slope], "")


def _linear(x: Tensor, wt: Tensor, b: Tensor | None = None, acc: Tensor | None = None) -> Tensor:
    """A 1x1 convolution as the GEMM it is on channels-last memory: [N*H*W, Cin] @ wt [Cin, Cout] (+ b), or
    accumulated into ``acc`` in place."""
    n, c, h, w = x.shape
    rows = x.permute(0, 2, 3, 1).reshape(n * h * w, c)  # a view of channels-last memory
    if acc is not None:
        acc.permute(0, 2, 3, 1).view(n * h * w, -1).addmm_(rows, wt)
        return acc
    out = torch.addmm(b, rows, wt) if b is not None else rows @ wt
    return out.view(n, h, w, -1).permute(0, 3, 1, 2)


@dataclass
class _Branch:
    scale: int
    down: tuple[Tensor, Tensor]
    mid: tuple[Tensor, Tensor]
    up: tuple[Tensor, Tensor]  # reconstruct composed with the fusion's part for it: [C_in, s*s*C], (i, j, c)


@dataclass
class _Block:
    slope: float
    body1: tuple[Tensor, Tensor]
    body2: tuple[Tensor, Tensor]  # body2 composed with the fusion's part for it, fusion bias included
    branches: list[_Branch]
    fusion: Tensor  # this block's slice of the network's fusion 1x1, transposed [C, C]


def _wb(conv) -> tuple[Tensor, Tensor]:
    return conv.weight.detach().float().contiguous(), conv.bias.detach().float().contiguous()


def _block(blk, fusion: Tensor) -> _Block:
    """A block's convolutions, composed (mdrn_fast.composition) and stored in float32; ``fusion`` its slice
    [C, C] of the network's fusion 1x1."""
    composed = compose_block(blk)
    f32 = lambda t: t.float().contiguous()  # noqa: E731
    branches = [_Branch(s, _wb(down), _wb(mid), (f32(w.permute(2, 0, 1, 3).flatten(1)), f32(b.flatten())))
                for s, down, mid, (w, b) in zip(blk.scales, blk.down, blk.mid, composed.ups)]
    return _Block(blk.slope, _wb(blk.body1), tuple(f32(t) for t in composed.body2), branches, f32(fusion.t()))


class CpuPlan:
    """The composed weights of one MDRN and its forward pass (``MDRN.trunk``'s contract)."""

    def __init__(self, model):
        self.model = model
        self.head, self.fusion_3x3, self.tail = _wb(model.head), _wb(model.fusion_3x3), _wb(model.tail)
        self.fusion_bias = model.fusion_1x1.bias.detach().float().contiguous()
        fusion = model.fusion_1x1.weight.detach()[:, :, 0, 0].split(model.channels, dim=1)
        self.blocks = [_block(blk, part) for blk, part in zip(model.body, fusion)]

    @staticmethod
    def _branches(b: _Block, f: Tensor) -> Tensor | None:
        """Sum over the scales of the composed reconstructions (None for a block without branches)."""
        if not b.branches:
            return None
        hs = [_conv(_conv(f, *br.down, stride=br.scale, slope=b.slope), *br.mid, padding=1, slope=b.slope)
              for br in b.branches]
        return torch.ops.mdrn_fast.reconstruct_sum(hs, [br.up[0] for br in b.branches], [br.up[1] for br in b.branches],
                                                   [br.scale for br in b.branches])

    @torch.no_grad()
    def trunk(self, x: Tensor, pooled=(), observe=None, stop_after: int | None = None, features: bool = True):
        layout = _CL if x.is_contiguous(memory_format=_CL) and not x.is_contiguous() else torch.contiguous_format
        n, c, h, w = x.shape
        if x.stride() != (h * w * c, 1, w * c, c):  # oneDNN reads strides literally, those of size-1 dims too:
            x = torch.empty_like(x, memory_format=_CL).copy_(x)  # others make every convolution after it slow
        f0 = _conv(x, *self.head, padding=1)
        f, u, feats = f0, None, []
        for i, (b, blk) in enumerate(zip(self.blocks, self.model.body)):
            t = _conv(f, *b.body1, padding=1, slope=b.slope)
            fi = _conv(t, *b.body2, padding=1, into=self._branches(b, f))  # + the branches
            del t
            if observe is not None:
                observe(i, fi)
            mean = pooled[i].to(fi.dtype) if i < len(pooled) else fi.mean((2, 3))
            f = torch.addcmul(f, fi, blk.attention(mean)[:, :, None, None])
            del fi
            if features:
                feats.append(f)
            if stop_after == i:
                return None, feats
            u = _linear(f, b.fusion, self.fusion_bias) if u is None else _linear(f, b.fusion, acc=u)
        g = _conv(u, *self.fusion_3x3, padding=1, into=f0)
        return _conv(g, *self.tail, padding=1, add=x).contiguous(memory_format=layout), feats


def unavailable_reason() -> str | None:
    """None when this torch has the oneDNN convolutions and this build the reconstruct_sum pass, else why not."""
    if not torch.backends.mkldnn.is_available() or not hasattr(torch.ops.mkldnn, "_convolution_pointwise"):
        return "this torch has no oneDNN (mkldnn) convolutions"
    return registry.unavailable_reason("cpu")


def applies(model, x: Tensor) -> bool:
    """Whether ``model`` runs ``x`` through the plan: float32 CPU inference on the cpu backend (or auto)."""
    if model.backend not in ("cpu", "auto") or not model.use_cpu_plan or torch.compiler.is_compiling():
        return False
    w, cpu32 = model.head.weight, ("cpu", torch.float32)
    if (x.device.type, x.dtype) != cpu32 or (w.device.type, w.dtype) != cpu32:
        return False  # op by op runs it, or says what does not match
    if torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in model.parameters())):
        return False
    return unavailable_reason() is None


def plan_for(model) -> CpuPlan:
    """The model's plan, composed again whenever a parameter changed (moved, reloaded or trained)."""
    key = tuple((p.data_ptr(), p._version) for p in model.parameters())
    cached = model.__dict__.get("_cpu_plan")
    if cached is None or cached[0] != key:
        cached = (key, CpuPlan(model))
        model.__dict__["_cpu_plan"] = cached
    return cached[1]
