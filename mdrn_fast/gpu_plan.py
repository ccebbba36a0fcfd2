"""MDRN inference on the GPU as one plan, for the `triton` backend: every map channels-last (NHWC), every
convolution the project's own Triton implicit GEMM (kernels/conv.py) with its epilogue fused, the linear steps
composed (mdrn_fast/composition.py), and the forward captured in a CUDA graph for repeated shapes.

A block, with x its input (one kernel per line; the [N, C] attention MLP in torch):
    t   = lrelu(conv3x3(x))                                  body1
    d_s = lrelu(conv_s(x))                                   DEGRADE: scales 2 and 4 from one read of x
    h_s = lrelu(conv3x3(d_s))                                per scale: the low-resolution 3x3
    f   = conv3x3(t) + sum_s reconstruct_s(h_s) + bias       body2, both RECONSTRUCTs and FUSE: kernels/plan.py
          and the channel sums of f for the attention mean    block_tail, by sub-pixel phase
    out = x + f * sigmoid(mlp(mean f))                       written into the block's slot of one stacked buffer
The network: head, the blocks, the fusion 1x1 over the stacked block outputs, the fusion 3x3 with f0 added in
its epilogue, the tail with the input added in its epilogue (written in the input's layout and dtype).

Full-resolution maps through memory per block: x read by body1 and by the degrades, t written and read, f written
and read, x read and out written by the scale-add (9, plus the low-resolution maps); inference of mdrn-base
moves about 68 maps against about 116 op by op (bench/floors.py counts them).

float32 (IEEE or TF32, as PyTorch's cuDNN switch says), float16 and bfloat16 (also under torch.autocast):
weights composed in float64 and stored once per dtype, rebuilt when a parameter changes. Applies to inference
without gradients on the `triton` backend, on CUDA tensors, or on CPU tensors under the Triton interpreter (the
tests); ``model.use_gpu_plan = False`` runs op by op; ``model.cuda_graphs = False`` runs the plan without graphs.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import Tensor

from . import registry
from .composition import compose_block
from .cuda_graph import GraphedStep

_CL = torch.channels_last
_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
MAX_GRAPHS = 4  # CUDA graphs kept per model (each holds its own activations): a few tile shapes of a photo


def _kernels():
    from .kernels import conv, plan  # imported when first used: the triton backend is optional

    return conv, plan


@dataclass
class _Conv:
    w: Tensor  # packed [K*K, C_in, C_out] (kernels/conv.py)
    b: Tensor
    k: int


@dataclass
class _Block:
    slope: float
    body1: _Conv
    body2: _Conv  # composed with its share of the fusion 1x1
    downs: list[tuple[int, _Conv]]
    mids: list[_Conv]
    ups: list[Tensor]  # composed reconstructs, [s*s, C, C] phase-major
    phase_bias: Tensor  # [S*S, C]: body2's composed bias plus each branch's at the phase


def _conv(w: Tensor, b: Tensor, dtype) -> _Conv:
    conv, _ = _kernels()
    return _Conv(conv.pack(w.to(dtype)), b.to(dtype).contiguous(), w.shape[-1])


def _layer(m, dtype) -> _Conv:
    return _conv(m.weight.detach().double(), m.bias.detach().double(), dtype)


def _block(blk, period: int, dtype) -> _Block:
    composed = compose_block(blk)
    bias = composed.body2[1].expand(period, period, -1).clone()
    for s, (_, bu) in zip(blk.scales, composed.ups):
        bias += bu.repeat(period // s, period // s, 1)  # sub-pixel (i, j) of the period has phase (i % s, j % s)
    ups = [w.flatten(0, 1).to(dtype).contiguous() for w, _ in composed.ups]
    return _Block(blk.slope, _layer(blk.body1, dtype), _conv(*composed.body2, dtype),
                  [(s, _layer(d, dtype)) for s, d in zip(blk.scales, blk.down)], [_layer(m, dtype) for m in blk.mid],
                  ups, bias.flatten(0, 1).to(dtype).contiguous())


class GpuPlan:
    """The composed weights of one MDRN in one dtype, and its forward pass (``MDRN.trunk``'s contract)."""

    def __init__(self, model, dtype: torch.dtype):
        self.model, self.dtype, self.period = model, dtype, model.multiple
        self.head, self.fusion_3x3, self.tail = (_layer(m, dtype) for m in (model.head, model.fusion_3x3, model.tail))
        c, b = model.channels, model.blocks
        w = model.fusion_1x1.weight.detach()[:, :, 0, 0]  # [C, B*C]
        self.fusion = (w.t().reshape(b, c, c).to(dtype).contiguous(), model.fusion_1x1.bias.detach().to(dtype))
        self.blocks = [_block(blk, self.period, dtype) for blk in model.body]
        self.graphs: OrderedDict = OrderedDict()

    def _conv(self, x: Tensor, layer: _Conv, stride: int = 1, slope=None, residual=None, out=None,
              out_dtype=None) -> Tensor:
        conv, _ = _kernels()
        pad = layer.k // 2 if stride == 1 else 0
        return conv.conv(x, layer.w, layer.k, stride, pad, bias=layer.b, slope=slope, residual=residual, out=out,
                         out_dtype=out_dtype or self.dtype)

    def _features(self, b: _Block, f: Tensor) -> tuple[Tensor, Tensor]:
        """(the block's f before attention, its channel sums [N, C] in float32)."""
        _, plan = _kernels()
        t = self._conv(f, b.body1, slope=b.slope)
        scales = [s for s, _ in b.downs]
        if scales == [2, 4]:  # both degrades from one read of f
            ds = plan.degrade_pair(f, b.downs[0][1].w, b.downs[0][1].b, b.downs[1][1].w, b.downs[1][1].b, b.slope)
        else:
            ds = [self._conv(f, down, stride=s, slope=b.slope) for s, down in b.downs]
        branches = [(self._conv(d, mid, slope=b.slope), up, s) for d, mid, up, s in zip(ds, b.mids, b.ups, scales)]
        fi = torch.empty_like(t)
        sums = plan.block_tail(t, b.body2.w, branches, b.phase_bias, self.period, fi)
        return fi, sums

    @torch.no_grad()
    def trunk(self, x: Tensor, pooled=(), observe=None, stop_after: int | None = None, features: bool = True):
        _, plan = _kernels()
        n, _, h, w = x.shape
        c = self.model.channels
        f0 = self._conv(x, self.head)
        stacked = torch.empty(len(self.blocks), n, h, w, c, device=x.device, dtype=self.dtype)
        slots = [s.permute(0, 3, 1, 2) for s in stacked]  # logical [N, C, H, W], channels-last memory
        f, feats = f0, []
        for i, (b, blk) in enumerate(zip(self.blocks, self.model.body)):
            fi, sums = self._features(b, f)
            if observe is not None:
                observe(i, fi)
            mean = pooled[i].float() if i < len(pooled) else sums / (h * w)
            f = plan.scale_add(f, fi, blk.attention(mean.to(blk.att1.weight.dtype)).float(), slots[i])
            feats.append(f)
            if stop_after == i:
                return None, feats
        u = plan.fuse_parts(stacked, *self.fusion, torch.empty_like(f0))
        g = self._conv(u, self.fusion_3x3, residual=f0)
        out = torch.empty_like(x, dtype=self.dtype if torch.is_autocast_enabled(x.device.type) else x.dtype)
        return self._conv(g, self.tail, residual=x, out=out), feats if features else []

    def run(self, x: Tensor, graphs: bool):
        """trunk(x) without features, replayed from a CUDA graph per (shape, strides, dtype, precision) when
        ``graphs`` (on CUDA only): the first call of a shape runs eagerly (autotuning, compiling), the second
        captures."""
        if not graphs or x.device.type != "cuda":
            return self.trunk(x, features=False)
        conv, _ = _kernels()
        key = (tuple(x.shape), x.stride(), x.dtype, torch.is_autocast_enabled("cuda"), conv.conv_allows_tf32())
        entry = self.graphs.get(key)
        if entry is None:
            entry = self.graphs[key] = GraphedStep(lambda static: self.trunk(static, features=False)[0], warmup=1)
            while len(self.graphs) > MAX_GRAPHS:
                self.graphs.popitem(last=False)
        self.graphs.move_to_end(key)
        return entry(x).clone(), []


def plan_dtype(model, x: Tensor) -> torch.dtype:
    """The dtype the plan computes in: the autocast dtype under autocast, else the weights'."""
    if torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return model.head.weight.dtype


def unavailable_reason() -> str | None:
    return registry.unavailable_reason("triton")


def applies(model, x: Tensor) -> bool:
    """Whether ``model`` runs ``x`` through the plan: inference on the triton backend, CUDA tensors (or CPU
    tensors under the Triton interpreter), float32/float16/bfloat16, at most two branches whose scales divide
    the largest, at most 64 channels."""
    if model.backend != "triton" or not model.use_gpu_plan or torch.compiler.is_compiling():
        return False
    if not (x.device.type == "cuda" or (x.device.type == "cpu" and registry.triton_interpreted())):
        return False
    w, autocast = model.head.weight, torch.is_autocast_enabled(x.device.type)
    if w.device != x.device or plan_dtype(model, x) not in _DTYPES or not (autocast or x.dtype == w.dtype):
        return False  # op by op runs it, or says what does not match
    if torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in model.parameters())):
        return False
    scales = model.scales
    if len(scales) > 2 or any(model.multiple % s for s in scales) or model.channels > 64:
        return False
    return unavailable_reason() is None


def plan_for(model, x: Tensor) -> GpuPlan:
    """The model's plan for the dtype x runs in (one kept per dtype), composed again whenever a parameter changed
    (moved, reloaded or trained)."""
    dtype = plan_dtype(model, x)
    key = tuple((p.data_ptr(), p._version) for p in model.parameters())
    plans = model.__dict__.setdefault("_gpu_plans", {})
    if dtype not in plans or plans[dtype][0] != key:
        plans[dtype] = (key, GpuPlan(model, dtype))
    return plans[dtype][1]
