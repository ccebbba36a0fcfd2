"""MDRN and its block MDRB, exactly as docs/DESIGN.md section 2 defines them, running on any backend."""
from __future__ import annotations

import operator
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .. import cpu_plan, gpu_plan, ops
from ..ops._common import keeps_channels_last
from ..reference import LEAKY_SLOPE
from ..registry import check_backend, resolve

PRESETS = {
    "mdrn-tiny": dict(channels=16, blocks=4),
    "mdrn-base": dict(channels=32, blocks=6),
    "mdrn-large": dict(channels=64, blocks=8),
}
ATTENTION_REDUCTION = 4
# what a configuration read from a file (weights, checkpoint) may ask for: 4x the largest preset's width, 32x its
# depth, 20x its parameters (mdrn-large: 2.5 M), so that a crafted file cannot make the loader build gigabytes
LIMITS = dict(channels=256, blocks=256, scales=4, scale=16, parameters=50_000_000)
SHAPE_KEYS = ("in_channels", "channels", "blocks", "scales")  # MDRN's arguments that fix its tensors' shapes


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2 if stride == 1 else 0)


FUSED_CONV_BACKENDS = ("triton",)  # backends whose 3x3 convolutions (and backward) run as the project's own kernels
# backends whose maps run channels_last from the input on where MDRN.channels_last is "auto": their ops keep that
# layout (the keeps_channels_last rule of csrc/common.h) and the vendor convolutions between them take it too, so
# no op converts a map. Not `cpu`: there the NCHW passes of degrade, reconstruct and attention are tiled for the
# cache and measured faster than the channels-last GEMMs (float32 inference takes cpu_plan, channels-last
# throughout, either way)
CHANNELS_LAST_BACKENDS = ("cuda",)


def conv3x3(x: Tensor, conv: nn.Conv2d, backend: str, slope: float | None = None,
            residual: Tensor | None = None) -> Tensor:
    """lrelu?(conv(x)) + residual?: one fused op (ops.conv3x3, NHWC) on the backends that have their own 3x3
    kernels; elsewhere the vendor convolution and the backend's epilogue ops, as before."""
    if backend in FUSED_CONV_BACKENDS:
        return ops.conv3x3(x, conv.weight, conv.bias, slope, residual, backend=backend)
    if slope is not None:
        return ops.bias_lrelu(F.conv2d(x, conv.weight, None, padding=1), conv.bias, slope, backend=backend)
    out = conv(x)
    return out if residual is None else ops.add_residual(out, residual, backend=backend)


class MDRB(nn.Module):
    """Multiple degradation and reconstruction block: full-resolution branch + one branch per scale,
    1x1 fusion, channel attention, local residual."""

    def __init__(self, channels: int, scales: Sequence[int] = (2, 4), slope: float = LEAKY_SLOPE):
        super().__init__()
        c = channels
        self.scales = tuple(int(s) for s in scales)
        self.slope = slope
        self.body1 = _conv(c, c, 3)
        self.body2 = _conv(c, c, 3)
        self.down = nn.ModuleList(_conv(c, c, s, stride=s) for s in self.scales)
        self.mid = nn.ModuleList(_conv(c, c, 3) for _ in self.scales)
        self.up = nn.ModuleList(_conv(c, c * s * s, 1) for s in self.scales)
        self.fuse = _conv((1 + len(self.scales)) * c, c, 1)
        r = max(1, c // ATTENTION_REDUCTION)
        self.att1 = nn.Linear(c, r)
        self.att2 = nn.Linear(r, c)

    def forward(self, x: Tensor, backend: str = "torch") -> Tensor:
        return self.attend(x, self.features(x, backend), backend)

    def features(self, x: Tensor, backend: str = "torch") -> Tensor:
        """f, the fused branches before channel attention."""
        be = backend
        b1 = conv3x3(conv3x3(x, self.body1, be, self.slope), self.body2, be)
        parts = [b1]
        for s, down, mid, up in zip(self.scales, self.down, self.mid, self.up):
            d = ops.degrade(x, down.weight, down.bias, s, self.slope, backend=be)
            h = conv3x3(d, mid, be, self.slope)
            parts.append(ops.reconstruct(h, up.weight, up.bias, s, backend=be))
        return ops.fuse(parts, self.fuse.weight, self.fuse.bias, backend=be)

    def attend(self, x: Tensor, f: Tensor, backend: str = "torch", pooled: Tensor | None = None) -> Tensor:
        """x + f * a: a from f's own spatial mean, or from ``pooled`` [N, C] (the mean over a whole image of
        which x is a tile: mdrn_fast.tiling)."""
        if pooled is None:
            return ops.channel_attention(x, f, self.att1.weight, self.att1.bias, self.att2.weight, self.att2.bias,
                                         backend=backend)
        return torch.addcmul(x, f, self.attention(pooled.to(f.dtype))[:, :, None, None])

    def attention(self, pooled: Tensor) -> Tensor:
        """a [N, C] from the spatial mean [N, C] of f."""
        return torch.sigmoid(self.att2(F.relu(self.att1(pooled))))


def check_scales(scales: Sequence[int]) -> tuple[int, ...]:
    """The degradation scales, checked against the padding rule: the input is padded to a multiple of the
    largest scale, so every scale must divide it (2 and 4, not 2 and 3)."""
    try:
        out = tuple(operator.index(s) for s in scales)
    except TypeError:
        raise ValueError(f"scales: expected a sequence of integers, got {scales!r}") from None
    if any(s < 2 for s in out) or (out and any(max(out) % s for s in out)):
        raise ValueError(f"scales {list(out)}: each must be >= 2 and divide the largest (the input is padded to a "
                         f"multiple of it), e.g. (2, 4)")
    return out


def check_config(config) -> dict:
    """A model configuration read from a file (a weight file's, a checkpoint's), checked before any tensor is
    built: the keys of MDRN.config(), gray or color, widths and depths within LIMITS; returns it as MDRN's
    keyword arguments. ValueError says what is wrong."""
    if not isinstance(config, dict):
        raise ValueError(f"config: expected a JSON object, got {type(config).__name__}")
    if set(config) - set(SHAPE_KEYS) or {"channels", "blocks"} - set(config):
        raise ValueError(f"config keys {sorted(config)}: expected channels, blocks and optionally in_channels, scales")
    out = dict(in_channels=config.get("in_channels", 1), channels=config["channels"], blocks=config["blocks"],
               scales=config.get("scales", (2, 4)))
    for key, top in (("in_channels", 3), ("channels", LIMITS["channels"]), ("blocks", LIMITS["blocks"])):
        value = out[key]
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= top:
            raise ValueError(f"config {key}={value!r}: expected an integer from 1 to {top}")
    if out["in_channels"] == 2:
        raise ValueError("config in_channels=2: expected 1 (gray) or 3 (color)")
    if isinstance(out["scales"], (str, bytes)) or not isinstance(out["scales"], (list, tuple)):
        raise ValueError(f"config scales={out['scales']!r}: expected a list of integers such as [2, 4]")
    out["scales"] = check_scales(out["scales"])
    if len(out["scales"]) > LIMITS["scales"] or any(s > LIMITS["scale"] for s in out["scales"]):
        raise ValueError(f"config scales={list(out['scales'])}: at most {LIMITS['scales']} scales, each at most "
                         f"{LIMITS['scale']}")
    with torch.device("meta"):  # shapes only: no memory
        n = count_parameters(MDRN(backend="torch", **out))
    if n > LIMITS["parameters"]:
        raise ValueError(f"config {config}: {n:,} parameters, more than the {LIMITS['parameters']:,} allowed")
    return out


class MDRN(nn.Module):
    """Multiple Degradation and Reconstruction Network (docs/DESIGN.md section 2).

    ``forward(y)`` takes [N, in_channels, H, W] of any H, W >= 1: the input is reflect-padded up to a
    multiple of max(scales) and the output cropped back exactly. ``return_features=True`` also
    returns the B block outputs (on the padded grid), the features HMDS distills.

    float32 inference on the CPU with the ``cpu`` backend (or ``auto``) runs a composed plan
    (mdrn_fast.cpu_plan); set ``use_cpu_plan = False`` to run it op by op instead. Inference with the ``triton``
    backend runs the GPU plan (mdrn_fast.gpu_plan: NHWC Triton convolutions, composed layers), replayed from a
    CUDA graph for a shape seen before; ``use_gpu_plan = False`` runs it op by op, ``cuda_graphs = False``
    without graphs. Training runs op by op (the ``triton`` backend's 3x3 convolutions, forward and backward,
    are its own NHWC kernels); ``recompute`` ("auto": on a GPU; True; False) keeps only each block's input and
    output for the backward and recomputes the rest of the block there. Op by op, ``channels_last`` ("auto":
    for the ``cuda`` backend on CUDA tensors; True; False) runs the maps channels-last from the input on, the
    output returned in the input's layout.
    """

    use_cpu_plan = True
    use_gpu_plan = True
    cuda_graphs = True
    recompute: bool | str = "auto"
    channels_last: bool | str = "auto"

    def __init__(self, in_channels: int = 1, channels: int = 32, blocks: int = 6, scales: Sequence[int] = (2, 4),
                 slope: float = LEAKY_SLOPE, backend: str = "auto"):
        super().__init__()
        if in_channels < 1 or channels < 1 or blocks < 1:
            raise ValueError(f"in_channels, channels and blocks must be >= 1, got {in_channels}, {channels}, {blocks}")
        self.in_channels, self.channels, self.blocks = in_channels, channels, blocks
        self.scales = check_scales(scales)
        self.multiple = max(self.scales) if self.scales else 1
        # how far an output pixel sees: head, fusion and tail 3x3 (1 each); per block the widest branch: two 3x3
        # at full resolution (2), or degrade by s, 3x3 at 1/s, reconstruct (2s - 1)
        self.receptive_radius = 3 + blocks * max([2] + [2 * s - 1 for s in self.scales])
        self.head = _conv(in_channels, channels, 3)
        self.body = nn.ModuleList(MDRB(channels, self.scales, slope) for _ in range(blocks))
        self.fusion_1x1 = _conv(blocks * channels, channels, 1)
        self.fusion_3x3 = _conv(channels, channels, 3)
        self.tail = _conv(channels, in_channels, 3)
        self.set_backend(backend)

    def set_backend(self, backend: str) -> "MDRN":
        """Run the same weights through another backend's kernels ("torch", "triton", "cuda", "cpu", "auto")."""
        self.backend = check_backend(backend)
        return self

    def config(self) -> dict:
        return dict(in_channels=self.in_channels, channels=self.channels, blocks=self.blocks, scales=list(self.scales))

    def _pad(self, y: Tensor) -> tuple[Tensor, int, int]:
        h, w = y.shape[-2:]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        if ph == 0 and pw == 0:
            return y, h, w
        # reflect needs pad < size; a side that small (< 4 pixels) is replicated instead
        mode = "reflect" if ph < h and pw < w else "replicate"
        return F.pad(y, (0, pw, 0, ph), mode=mode), h, w

    def forward(self, y: Tensor, return_features: bool = False):
        if not isinstance(y, Tensor) or y.dim() != 4 or y.shape[1] != self.in_channels:
            got = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
            raise ValueError(f"y: expected a tensor [N, {self.in_channels}, H, W], got {got}")
        if not y.is_floating_point():
            raise TypeError(f"y: expected a floating dtype, got {y.dtype}; scale images to [0, 1] floats first")
        if y.numel() == 0:
            raise ValueError(f"y: expected a non-empty batch, got shape {tuple(y.shape)}")
        x, h, w = self._pad(y)
        out, feats = self.trunk(x, features=return_features)
        out = out[..., :h, :w]
        return (out, feats) if return_features else out

    def trunk(self, x: Tensor, pooled: Sequence[Tensor] = (), observe=None, stop_after: int | None = None,
              features: bool = True):
        """The network on an input already padded to a multiple of ``self.multiple``: (out, block outputs; an
        empty list where ``features`` is False and the path need not keep them). Tiled inference
        (mdrn_fast.tiling) uses the rest: ``pooled[i]`` replaces block i's own attention mean (for
        i < len(pooled)); ``observe(i, f)`` sees block i's f before attention; ``stop_after=i`` returns
        (None, block outputs) after block i."""
        if cpu_plan.applies(self, x):
            return cpu_plan.plan_for(self).trunk(x, pooled, observe, stop_after, features)
        if gpu_plan.applies(self, x):
            plan = gpu_plan.plan_for(self, x)
            if not features and not pooled and observe is None and stop_after is None:
                return plan.run(x, self.cuda_graphs)
            return plan.trunk(x, pooled, observe, stop_after, features)
        be = self.backend
        layout = torch.channels_last if keeps_channels_last(x) else torch.contiguous_format  # the output's
        channels_last = self._runs_channels_last(x)
        if channels_last:  # the input itself (a color one; a gray one is both layouts at once), then the head
            x = x.contiguous(memory_format=torch.channels_last)
        f0 = conv3x3(x, self.head, be)
        if channels_last:  # from a gray input the convolution chooses NCHW: one copy here, none after
            f0 = f0.contiguous(memory_format=torch.channels_last)
        feats = []
        f = f0
        recompute = self._recomputes(x) and not pooled and observe is None
        for i, block in enumerate(self.body):
            if recompute:  # only f is kept for the backward; the block runs again there
                # a block draws no random numbers: no RNG state to save and restore (which CUDA-graph capture of
                # a training step would refuse)
                f = checkpoint(block, f, be, use_reentrant=False, determinism_check="none", preserve_rng_state=False)
            else:
                fi = block.features(f, be)
                if observe is not None:
                    observe(i, fi)
                f = block.attend(f, fi, be, pooled[i] if i < len(pooled) else None)
            feats.append(f)
            if stop_after == i:
                return None, feats
        fused = ops.fuse(feats, self.fusion_1x1.weight, self.fusion_1x1.bias, backend=be)
        g = conv3x3(fused, self.fusion_3x3, be, residual=f0)
        out = conv3x3(g, self.tail, be, residual=x)
        return out.contiguous(memory_format=layout), feats

    def _runs_channels_last(self, x: Tensor) -> bool:
        """Whether this forward runs its maps channels-last (see channels_last)."""
        if self.channels_last == "auto":
            return resolve(self.backend, x.device) in CHANNELS_LAST_BACKENDS
        return bool(self.channels_last)

    def _recomputes(self, x: Tensor) -> bool:
        """Whether this forward recomputes its blocks in the backward (training, gradients on; see recompute)."""
        wanted = x.is_cuda if self.recompute == "auto" else bool(self.recompute)
        return wanted and self.training and torch.is_grad_enabled()


def mdrn(preset: str = "mdrn-base", in_channels: int = 1, backend: str = "auto", **overrides) -> MDRN:
    """Build a preset: "mdrn-tiny" (C=16, B=4), "mdrn-base" (C=32, B=6), "mdrn-large" (C=64, B=8)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; presets are {sorted(PRESETS)}")
    kwargs = dict(PRESETS[preset], **overrides)
    return MDRN(in_channels=in_channels, backend=backend, **kwargs)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
