"""Denoisers: MDRN (the project's model) and the teachers HMDS can distill from."""
from .mdrn import MDRB, MDRN, PRESETS, count_parameters, mdrn

__all__ = ["MDRB", "MDRN", "PRESETS", "count_parameters", "mdrn"]
