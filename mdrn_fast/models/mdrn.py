"""MDRN and its block MDRB, exactly as docs/DESIGN.md section 2 defines them, running on any backend."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import cpu_plan, gpu_plan, ops
from ..reference import LEAKY_SLOPE
from ..registry import check_backend

PRESETS = {
    "mdrn-tiny": dict(channels=16, blocks=4),
    "mdrn-base": dict(channels=32, blocks=6),
    "mdrn-large": dict(channels=64, blocks=8),
}
ATTENTION_REDUCTION = 4


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2 if stride == 1 else 0)


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
        t = F.conv2d(x, self.body1.weight, None, padding=1)
        b1 = self.body2(ops.bias_lrelu(t, self.body1.bias, self.slope, backend=be))
        parts = [b1]
        for s, down, mid, up in zip(self.scales, self.down, self.mid, self.up):
            d = ops.degrade(x, down.weight, down.bias, s, self.slope, backend=be)
            h = ops.bias_lrelu(F.conv2d(d, mid.weight, None, padding=1), mid.bias, self.slope, backend=be)
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


class MDRN(nn.Module):
    """Multiple Degradation and Reconstruction Network (docs/DESIGN.md section 2).

    ``forward(y)`` takes [N, in_channels, H, W] of any H, W >= 1: the input is reflect-padded up to a
    multiple of max(scales) and the output cropped back exactly. ``return_features=True`` also
    returns the B block outputs (on the padded grid), the features HMDS distills.

    float32 inference on the CPU with the ``cpu`` backend (or ``auto``) runs a composed plan
    (mdrn_fast.cpu_plan); set ``use_cpu_plan = False`` to run it op by op instead. Inference with the ``triton``
    backend runs the GPU plan (mdrn_fast.gpu_plan: NHWC Triton convolutions, composed layers), replayed from a
    CUDA graph for a shape seen before; ``use_gpu_plan = False`` runs it op by op, ``cuda_graphs = False``
    without graphs.
    """

    use_cpu_plan = True
    use_gpu_plan = True
    cuda_graphs = True

    def __init__(self, in_channels: int = 1, channels: int = 32, blocks: int = 6, scales: Sequence[int] = (2, 4),
                 slope: float = LEAKY_SLOPE, backend: str = "auto"):
        super().__init__()
        if in_channels < 1 or channels < 1 or blocks < 1:
            raise ValueError(f"in_channels, channels and blocks must be >= 1, got {in_channels}, {channels}, {blocks}")
        self.in_channels, self.channels, self.blocks = in_channels, channels, blocks
        self.scales = tuple(int(s) for s in scales)
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
        f0 = self.head(x)
        feats = []
        f = f0
        for i, block in enumerate(self.body):
            fi = block.features(f, be)
            if observe is not None:
                observe(i, fi)
            f = block.attend(f, fi, be, pooled[i] if i < len(pooled) else None)
            feats.append(f)
            if stop_after == i:
                return None, feats
        g = self.fusion_3x3(ops.fuse(feats, self.fusion_1x1.weight, self.fusion_1x1.bias, backend=be))
        return ops.add_residual(self.tail(ops.add_residual(g, f0, backend=be)), x, backend=be), feats


def mdrn(preset: str = "mdrn-base", in_channels: int = 1, backend: str = "auto", **overrides) -> MDRN:
    """Build a preset: "mdrn-tiny" (C=16, B=4), "mdrn-base" (C=32, B=6), "mdrn-large" (C=64, B=8)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; presets are {sorted(PRESETS)}")
    kwargs = dict(PRESETS[preset], **overrides)
    return MDRN(in_channels=in_channels, backend=backend, **kwargs)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
