"""Denoising images of any size in bounded memory: tiles chosen from a memory budget, stitched to (almost or
exactly) the whole-image result.

MDRN is convolutional except for each block's channel attention, which scales f by a = mlp(mean of f over the
whole image). A tile that runs the network alone sees its own means and so differs a little from the whole
image. Three modes:

  local   one pass, each tile with its own attention: fastest, close but not equal.
  global  two passes (default): the first runs the tiles with their own attention and sums each block's f over
          the tiles' cores, which gives whole-image means; the second runs the tiles with those means. Differs
          from the whole image only through the first pass's small effect on the means.
  exact   B + 1 passes: pass i finds block i's whole-image mean with blocks before it already on exact means,
          then every tile runs once more. Equal to the whole-image result up to float rounding.

The image is padded as the whole-image forward pads it; tiles start on the degradation grid (multiples of
``model.multiple``) and carry a halo of ``overlap`` pixels (default: the network's receptive radius, so that a
core's pixels see everything they would in the whole image); the cores partition the image.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm import tqdm

from . import cpu_plan

MODES = ("local", "global", "exact")
DEFAULT_MEMORY = 1 << 30  # bytes of activations per tile (a 24-megapixel photo then stays under 3 GB)
# inference keeps about this many C-channel float maps alive per pixel: op by op (measured: 1.6-1.9 KB per pixel
# for mdrn-base, C = 32, in float32 on the CPU), and in the CPU plan (mdrn_fast/cpu_plan.py; measured 0.7 KB)
_MAPS_PER_PIXEL = 16
_PLAN_MAPS_PER_PIXEL = 8


@dataclass(frozen=True)
class Tile:
    core: tuple[int, int, int, int]  # top, bottom, left, right on the padded image: the pixels this tile gives
    box: tuple[int, int, int, int]  # the region it runs on: the core and its halo, clipped to the image

    def core_in_box(self) -> tuple[slice, slice]:
        t, b, l, r = self.core
        return slice(t - self.box[0], b - self.box[0]), slice(l - self.box[2], r - self.box[2])


def plan(height: int, width: int, core: int, halo: int) -> list[Tile]:
    """Tiles whose cores (core x core, smaller at the far edges) partition height x width."""
    tiles = []
    for top in range(0, height, core):
        for left in range(0, width, core):
            c = (top, min(height, top + core), left, min(width, left + core))
            tiles.append(Tile(c, (max(0, c[0] - halo), min(height, c[1] + halo), max(0, c[2] - halo),
                                  min(width, c[3] + halo))))
    return tiles


def bytes_per_pixel(model, y: torch.Tensor) -> int:
    """Activation bytes per pixel of ``model`` run without gradients on inputs like ``y``."""
    with torch.no_grad():
        maps = _PLAN_MAPS_PER_PIXEL if cpu_plan.applies(model, y) else _MAPS_PER_PIXEL
    return maps * model.channels * torch.finfo(y.dtype).bits // 8


def halo_for(model) -> int:
    return -(-model.receptive_radius // model.multiple) * model.multiple


def core_for(model, memory: int, y: torch.Tensor, halo: int) -> int:
    """The largest core (a multiple of the degradation grid) whose tile, halo included, fits ``memory``."""
    side = int((memory / bytes_per_pixel(model, y)) ** 0.5)
    return max(model.multiple * 8, (side - 2 * halo) // model.multiple * model.multiple)


def fits_whole(model, y: torch.Tensor, memory: int) -> bool:
    return y.shape[0] * y.shape[-2] * y.shape[-1] * bytes_per_pixel(model, y) <= memory


@torch.no_grad()
def denoise_tiled(model, y: torch.Tensor, tile: int | None = None, overlap: int | None = None,
                  memory: int = DEFAULT_MEMORY, mode: str = "global", progress: bool = False) -> torch.Tensor:
    """model(y) for y [N, C, H, W], in tiles: ``tile`` pixels of core per side (default: the largest that fits
    ``memory`` bytes with its halo), ``overlap`` pixels of halo (default: the receptive radius)."""
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    halo = halo_for(model) if overlap is None else overlap
    if halo % model.multiple or (tile is not None and (tile % model.multiple or tile <= 0)):
        raise ValueError(f"tile ({tile}) and overlap ({halo}) must be positive multiples of {model.multiple}")
    x, h, w = model._pad(y)
    core = tile if tile is not None else core_for(model, memory, y, halo)
    tiles = plan(x.shape[-2], x.shape[-1], core, halo)
    passes = {"local": 0, "global": 1, "exact": model.blocks}[mode] if len(tiles) > 1 else 0
    bar = tqdm(total=len(tiles) * (passes + 1), desc="tiles", unit="tile", disable=not progress or len(tiles) == 1)
    area = x.shape[-2] * x.shape[-1]
    pooled: list[torch.Tensor] = []
    for p in range(passes):  # statistics: whole-image means of each block's f
        upto = model.blocks - 1 if mode == "global" else p
        sums = [torch.zeros(x.shape[0], model.channels, dtype=torch.float64, device=x.device) for _ in range(upto + 1)]
        for t in tiles:
            rows, cols = t.core_in_box()

            def observe(i, f, rows=rows, cols=cols):
                if i >= len(pooled):  # the blocks whose means this pass finds
                    sums[i] += _core_sum(f, rows, cols)

            model.trunk(_crop(x, t.box), pooled, observe, stop_after=upto, features=False)
            bar.update()
        means = [s / area for s in sums]
        pooled = means if mode == "global" else pooled + [means[p]]
    out = torch.empty_like(x)  # x's layout: for a photo's channels-last view, the result is one too
    for t in tiles:
        part, _ = model.trunk(_crop(x, t.box), pooled, features=False)
        rows, cols = t.core_in_box()
        out[..., t.core[0]:t.core[1], t.core[2]:t.core[3]] = part[..., rows, cols]
        bar.update()
    bar.close()
    return out[..., :h, :w]


def _core_sum(f: torch.Tensor, rows: slice, cols: slice) -> torch.Tensor:
    """[N, C] float64 sums of f over a tile's core: each row in float32 along memory, the rows in float64 (one
    float64 reduction over a strided crop took 25x longer)."""
    if f.is_contiguous(memory_format=torch.channels_last):
        return f.permute(0, 2, 3, 1)[:, rows, cols].sum(2).sum(1, dtype=torch.float64)
    return f[..., rows, cols].sum(3).sum(2, dtype=torch.float64)


def _crop(x: torch.Tensor, box) -> torch.Tensor:
    """The box of x as its own contiguous tensor (x may be a channels-last view of a whole photo)."""
    return x[..., box[0]:box[1], box[2]:box[3]].contiguous()
