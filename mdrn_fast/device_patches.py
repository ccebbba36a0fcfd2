"""Training patches drawn where the model trains: the whole set is copied to the device once, and each step's
crops, flips and rot90s are one gather there (no worker processes, no host-to-device copy per step).

The batch of step t depends only on (seed, t, rank), so a resumed run draws what an uninterrupted one draws.
It differs from the worker loader's (mdrn_fast.data): the random numbers come from the device's generator.
"""
from __future__ import annotations

import zlib

import torch

from .images import load_image
from .paths import dataset


class DevicePatches:
    """Random ``patch`` x ``patch`` crops of an image set, with the 8 flips/rotations when ``augment``."""

    def __init__(self, name_or_folder: str, channels: int, patch: int, seed: int = 0, root=None,
                 device="cpu", augment: bool = True):
        files = dataset(name_or_folder, root)
        images = [torch.from_numpy(load_image(f, channels=channels).pixels).permute(2, 0, 1) for f in files]
        small = [f.name for f, im in zip(files, images) if min(im.shape[1:]) < patch]
        if small:
            raise ValueError(f"images smaller than the {patch}-pixel patch: {small[:5]}")
        self.device = torch.device(device)
        # every image, flattened [C, H, W] after [C, H, W]: exact whatever the sizes, no padding
        self.pixels = torch.cat([im.reshape(-1) for im in images]).to(self.device)
        sizes = torch.tensor([im.shape[1:] for im in images], dtype=torch.int64)
        self.heights, self.widths = sizes[:, 0].to(self.device), sizes[:, 1].to(self.device)
        offsets = torch.zeros(len(images), dtype=torch.int64)
        offsets[1:] = torch.cumsum(sizes[:, 0] * sizes[:, 1] * channels, 0)[:-1]
        self.offsets = offsets.to(self.device)
        self.channels, self.patch, self.seed, self.augment = channels, patch, seed, augment
        self.images = len(images)

    def batch(self, step: int, size: int, rank: int = 0) -> torch.Tensor:
        """[size, C, patch, patch] float32 on the device: the patches of this step and rank."""
        p, dev = self.patch, self.device
        gen = torch.Generator(device=dev)
        gen.manual_seed(zlib.crc32(f"patches:{self.seed}:{step}:{rank}".encode()))
        n = torch.randint(self.images, (size,), generator=gen, device=dev)
        h, w = self.heights[n], self.widths[n]
        top = (torch.rand(size, generator=gen, device=dev) * (h - p + 1)).long().clamp_max(h - p)
        left = (torch.rand(size, generator=gen, device=dev) * (w - p + 1)).long().clamp_max(w - p)
        # one of the 8 symmetries of the square: bit 0 flips rows, bit 1 flips columns, bit 2 transposes
        k = (torch.randint(8, (size,), generator=gen, device=dev) if self.augment
             else torch.zeros(size, dtype=torch.int64, device=dev))
        i = torch.arange(p, device=dev).view(1, p, 1).expand(size, p, p)
        j = torch.arange(p, device=dev).view(1, 1, p).expand(size, p, p)
        swap = (k & 4).bool().view(size, 1, 1)
        rows, cols = torch.where(swap, j, i), torch.where(swap, i, j)
        rows = torch.where((k & 1).bool().view(size, 1, 1), p - 1 - rows, rows) + top.view(size, 1, 1)
        cols = torch.where((k & 2).bool().view(size, 1, 1), p - 1 - cols, cols) + left.view(size, 1, 1)
        plane = (h * w).view(size, 1, 1, 1)
        channel = torch.arange(self.channels, device=dev).view(1, -1, 1, 1)
        index = (self.offsets[n].view(size, 1, 1, 1) + channel * plane
                 + (rows * w.view(size, 1, 1) + cols).unsqueeze(1))
        return self.pixels[index]
