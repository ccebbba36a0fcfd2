"""HMDS knowledge distillation (docs/DESIGN.md section 3): feature losses and the distillation objective."""
from .hmds import HMDS, pair_indices
from ..reference import affinity
from .losses import KINDS, feature_loss

__all__ = ["HMDS", "KINDS", "affinity", "feature_loss", "pair_indices"]
