"""HMDS knowledge distillation (docs/DESIGN.md section 3): feature losses and the distillation objective."""
from .hmds import HMDS, pair_indices
from .losses import KINDS, affinity, feature_loss

__all__ = ["HMDS", "KINDS", "affinity", "feature_loss", "pair_indices"]
