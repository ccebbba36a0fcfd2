"""Denoisers: MDRN (the project's model) and DnCNN, a plain CNN teacher for HMDS."""
from .dncnn import DnCNN
from .mdrn import MDRB, MDRN, PRESETS, count_parameters, mdrn

__all__ = ["DnCNN", "MDRB", "MDRN", "PRESETS", "count_parameters", "mdrn"]
