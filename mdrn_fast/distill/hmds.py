"""HMDS (docs/DESIGN.md section 3): a student learns from a frozen teacher through its block features.

  strategy "A" (heterogeneous architecture): the teacher is another network (mdrn-large, DnCNN, ...) on the
      same noisy input; student features pass through learned 1x1 adapters C_s -> C_t for l1/l2 (fakd and at
      compare spatial structure and need none);
  strategy "D" (heterogeneous degradation): the teacher, trained at a lower noise level sigma_t, sees the
      same clean image with its own weaker noise.
  L = L1(student(y), x) + weight * sum_i w_i D(A_i(fs_i), ft_j(i)),  j(i) = round(i * B_t / B_s),  w_i = 1/B_s
"""
from __future__ import annotations

import zlib

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import ops
from .losses import KINDS, feature_loss

DEFAULT_LOSS = {"A": "fakd", "D": "l1"}


def pair_indices(student_blocks: int, teacher_blocks: int) -> list[int]:
    """1-based teacher block for each student block i = 1..B_s: round(i * B_t / B_s)."""
    return [max(1, min(teacher_blocks, round(i * teacher_blocks / student_blocks)))
            for i in range(1, student_blocks + 1)]


class HMDS(nn.Module):
    """The training objective ``loss, stats = hmds(clean, noisy, sigma)``; ``hmds.student`` is the model to
    validate and export (adapters are training-only and not part of it)."""

    def __init__(self, student: nn.Module, teacher: nn.Module, strategy: str = "A", loss: str | None = None,
                 weight: float = 1.0, sigma_teacher: float = 15.0, backend: str = "auto"):
        super().__init__()
        if strategy not in DEFAULT_LOSS:
            raise ValueError(f"strategy: expected 'A' or 'D', got {strategy!r}")
        self.strategy, self.loss_kind = strategy, loss or DEFAULT_LOSS[strategy]
        if self.loss_kind not in KINDS:
            raise ValueError(f"loss: expected one of {KINDS}, got {self.loss_kind!r}")
        self.weight, self.sigma_teacher, self.backend = weight, sigma_teacher, backend
        self.student, self.teacher = student, teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.pairs = pair_indices(student.blocks, teacher.blocks)
        needs_adapter = self.loss_kind in ("l1", "l2") and student.channels != teacher.channels
        self.adapters = nn.ModuleList(
            nn.Conv2d(student.channels, teacher.channels, 1) if needs_adapter else nn.Identity()
            for _ in self.pairs)
        self._calls = 0

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # frozen: its BatchNorm statistics (if any) never move
        return self

    def forward(self, clean: Tensor, noisy: Tensor, sigma: Tensor):
        out, fs = self.student(noisy, return_features=True)
        with torch.no_grad():
            if self.strategy == "D":  # the same clean image, with the teacher's own weaker noise
                seed = zlib.crc32(f"hmds-d:{self._calls}".encode())
                teacher_input = ops.add_noise(clean, self.sigma_teacher, seed=seed, backend="torch")
            else:
                teacher_input = noisy
            _, ft = self.teacher(teacher_input, return_features=True)
        self._calls += 1
        student_feats = [a(fs[i]) for i, a in enumerate(self.adapters)]
        teacher_feats = [ft[j - 1] for j in self.pairs]
        for i, (a, b) in enumerate(zip(student_feats, teacher_feats)):
            if a.shape[2:] != b.shape[2:]:
                raise ValueError(f"student feature {i} is {tuple(a.shape[2:])} but teacher feature is "
                                 f"{tuple(b.shape[2:])}: use patches whose sides are multiples of 4")
        rec = F.l1_loss(out, clean)
        dist = feature_loss(student_feats, teacher_feats, kind=self.loss_kind, backend=self.backend)
        loss = rec + self.weight * dist
        return loss, {"l1": rec.detach(), "distill": dist.detach()}
