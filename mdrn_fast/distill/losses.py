"""Feature-distillation distances of docs/DESIGN.md section 3 and ``feature_loss``, which validates and
dispatches them like every op (their pure-PyTorch references, the "torch" backend, are in reference.py).

  l1, l2  mean absolute / squared difference (same shapes: student features pass through adapters first)
  at      attention transfer: q = normalize(mean_c |f|^2) per sample over HW; D = mean_n ||q_s - q_t||^2
  fakd    feature affinity: per sample F [C, HW] with unit columns, A = F^T F [HW, HW];
          D = mean over n, p, q of |A_s - A_t|  (the fused kernels never build A: O(C*HW) memory)
"""
from __future__ import annotations

from typing import Sequence

from torch import Tensor

from .. import checks
from ..reference import at, fakd, l1, l2
from ..registry import lookup, register

KINDS = ("l1", "l2", "at", "fakd")
REFERENCE = {"l1": l1, "l2": l2, "at": at, "fakd": fakd}
for _kind, _fn in REFERENCE.items():
    register(f"distill_{_kind}", "torch")(_fn)


def _check_pair(i: int, fs: Tensor, ft: Tensor, kind: str) -> None:
    checks.tensor(f"fs[{i}]", fs, 4)
    checks.tensor(f"ft[{i}]", ft, 4)
    checks.same([(f"fs[{i}]", fs), (f"ft[{i}]", ft)])
    if kind in ("l1", "l2"):
        checks.shape(f"ft[{i}]", ft, fs.shape)
    elif fs.shape[0] != ft.shape[0] or fs.shape[2:] != ft.shape[2:]:
        raise ValueError(f"ft[{i}]: {kind} needs the student's batch and spatial size {tuple(fs.shape)}, "
                         f"got {tuple(ft.shape)} (channels may differ)")


def feature_loss(fs: Tensor | Sequence[Tensor], ft: Tensor | Sequence[Tensor], kind: str = "fakd",
                 weights: Sequence[float] | None = None, backend: str = "auto") -> Tensor:
    """sum_i w_i D(fs_i, ft_i) over feature pairs (one pair, or lists); w_i = 1/len by default."""
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    fs_list = [fs] if isinstance(fs, Tensor) else list(fs)
    ft_list = [ft] if isinstance(ft, Tensor) else list(ft)
    if len(fs_list) != len(ft_list) or not fs_list:
        raise ValueError(f"fs, ft: expected as many student as teacher features (>= 1), got {len(fs_list)} "
                         f"and {len(ft_list)}")
    weights = [1.0 / len(fs_list)] * len(fs_list) if weights is None else list(weights)
    if len(weights) != len(fs_list):
        raise ValueError(f"weights: expected {len(fs_list)} values, got {len(weights)}")
    total = None
    for i, (a, b, w) in enumerate(zip(fs_list, ft_list, weights)):
        _check_pair(i, a, b, kind)
        d = lookup(f"distill_{kind}", backend, a.device)(a, b) * w
        total = d if total is None else total + d
    return total
