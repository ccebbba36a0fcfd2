"""User-facing errors of the command line, and the checks of its device and backend choices.

A UsageError (or a BackendError, a missing file or set) is a mistake in how a command was called: the CLI
prints its message on one line and exits with 2. Other failures exit with 1, also on one line; `--debug`
shows the traceback instead.
"""
from __future__ import annotations

import torch

from .registry import BackendError, check_backend


class UsageError(ValueError):
    """A mistake in a command's flags or inputs that the user can fix; the message says how."""


USAGE_ERRORS = (UsageError, BackendError, FileNotFoundError)


def resolve_device(spec: str) -> torch.device:
    """--device: "auto" (a GPU if torch sees one, else the CPU), "cpu", "cuda" or "cuda:N"; checked here."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise UsageError(f"--device {spec}: not a device (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {spec}: no CUDA GPU is visible to torch {torch.__version__} here "
                             "(use --device cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"--device {spec}: there are {torch.cuda.device_count()} GPU(s)")
    elif device.type != "cpu":
        raise UsageError(f"--device {spec}: only cpu and cuda are supported")
    return device


def check_backend_on(backend: str, device: torch.device) -> str:
    """--backend: known, usable here, and able to run on ``device``."""
    try:
        check_backend(backend)
    except BackendError as e:
        raise UsageError(f"--backend {backend}: {e}") from None
    from .registry import triton_interpreted

    fits = {"cpu": device.type == "cpu", "cuda": device.type == "cuda",
            "triton": device.type == "cuda" or triton_interpreted()}  # the interpreter runs it on CPU tensors
    if not fits.get(backend, True):
        other = "cpu" if device.type == "cuda" else "cuda"
        raise UsageError(f"--backend {backend} runs on {'CPU' if backend == 'cpu' else 'CUDA'} tensors, and "
                         f"--device is {device}: pass --device {other} or another --backend (auto picks one)")
    return backend
