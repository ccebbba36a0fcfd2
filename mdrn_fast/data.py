"""Training patches: random crops of image folders with flips and rot90, the same for a given
(seed, sample index) whatever the worker, rank or resume point; noise is added in the training step."""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from .images import load_image
from .paths import dataset


class PatchDataset(Dataset):
    """Item i is a [C, patch, patch] float32 crop, chosen and augmented by a generator seeded with (seed, i)."""

    def __init__(self, name_or_folder: str, channels: int, patch: int = 64, seed: int = 0, root=None,
                 augment: bool = True):
        files = dataset(name_or_folder, root)
        self.images = [load_image(f, channels=channels).pixels for f in files]
        small = [f.name for f, im in zip(files, self.images) if min(im.shape[:2]) < patch]
        if small:
            raise ValueError(f"images smaller than the {patch}-pixel patch: {small[:5]}")
        self.patch, self.seed, self.augment = patch, seed, augment

    def __len__(self) -> int:
        return 2**62  # a stream: the sampler decides which indices are drawn

    def __getitem__(self, i: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, i])
        im = self.images[rng.integers(len(self.images))]
        top = rng.integers(im.shape[0] - self.patch + 1)
        left = rng.integers(im.shape[1] - self.patch + 1)
        p = im[top:top + self.patch, left:left + self.patch]
        if self.augment:
            p = np.rot90(p, k=int(rng.integers(4)))
            if rng.integers(2):
                p = p[:, ::-1]
        return torch.from_numpy(np.ascontiguousarray(p.transpose(2, 0, 1)))


class StepSampler(Sampler):
    """Sample indices for steps [start, stop) of this rank: step t, rank r, slot j -> (t * world + r) * batch + j.
    Resuming at step k draws exactly what an uninterrupted run draws from step k on."""

    def __init__(self, start: int, stop: int, batch: int, rank: int = 0, world: int = 1):
        self.start, self.stop, self.batch, self.rank, self.world = start, stop, batch, rank, world

    def __iter__(self):
        for t in range(self.start, self.stop):
            base = (t * self.world + self.rank) * self.batch
            yield from range(base, base + self.batch)

    def __len__(self) -> int:
        return (self.stop - self.start) * self.batch


def parse_sigma(spec) -> tuple[float, float]:
    """"25" -> (25, 25); "0-55" (blind) -> (0, 55)."""
    text = str(spec)
    lo, _, hi = text.partition("-")
    try:
        lo_f, hi_f = float(lo), float(hi or lo)
    except ValueError:
        raise ValueError(f"sigma: expected a number or a range like 0-55, got {spec!r}") from None
    if not 0 <= lo_f <= hi_f:
        raise ValueError(f"sigma: expected 0 <= low <= high, got {spec!r}")
    return lo_f, hi_f


def batch_sigmas(spec, n: int, seed: int, step: int, rank: int) -> torch.Tensor:
    """One sigma per sample: fixed, or uniform over the blind range, seeded by (seed, step, rank)."""
    lo, hi = parse_sigma(spec)
    rng = np.random.default_rng([seed, step, rank, 1])
    return torch.tensor(rng.uniform(lo, hi, size=n) if hi > lo else np.full(n, lo), dtype=torch.float32)
