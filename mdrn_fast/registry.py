"""The one place that maps (op name, backend name) to an implementation.

Backends register their implementations with ``@register(op, backend)`` in the module that
``_BACKEND_MODULES`` names; that module is imported the first time the backend is asked for.
"""
from __future__ import annotations

import importlib
import os
import warnings
from typing import Callable

import torch

BACKENDS = ("torch", "triton", "cuda", "cpu")
# "auto": first usable backend for the tensors' device, in this order.
AUTO_ORDER = {"cuda": ("cuda", "triton", "torch"), "cpu": ("cpu", "torch")}
_BACKEND_MODULES = {
    "torch": "mdrn_fast.ops",
    "triton": "mdrn_fast.kernels",
    "cpu": "mdrn_fast.cpp",
    "cuda": "mdrn_fast.cpp",
}

_IMPLS: dict[tuple[str, str], Callable] = {}
_STATUS: dict[str, str | None] = {}  # backend -> None when usable, else the reason it is not


class BackendError(RuntimeError):
    """A backend was asked for that is unknown, unavailable, or does not fit the inputs."""


def register(op: str, backend: str):
    """Decorator: make ``fn`` the implementation of ``op`` on ``backend``."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; backends are {BACKENDS}")

    def wrap(fn: Callable) -> Callable:
        _IMPLS[(op, backend)] = fn
        return fn

    return wrap


def triton_interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def _probe(backend: str) -> str | None:
    if backend == "triton":
        try:
            import triton  # noqa: F401
        except ImportError as e:
            return f"triton is not installed ({e})"
        if not torch.cuda.is_available() and not triton_interpreted():
            return "no CUDA GPU (set TRITON_INTERPRET=1 before importing triton to run on the CPU interpreter)"
    if backend in ("cpu", "cuda"):
        from . import extension

        reason = extension.unavailable_reason()
        if reason is not None:
            return reason
        if backend == "cuda":
            if not extension.built_with_cuda():
                return "mdrn_fast._C was built without CUDA kernels (torch without CUDA, nvcc missing, or MDRN_FAST_NO_CUDA=1)"
            if not torch.cuda.is_available():
                return "no CUDA GPU is visible to torch"
    try:
        importlib.import_module(_BACKEND_MODULES[backend])
    except Exception as e:  # a broken backend must not break the others
        return f"importing {_BACKEND_MODULES[backend]} failed: {type(e).__name__}: {e}"
    return None


def unavailable_reason(backend: str) -> str | None:
    """None when ``backend`` is usable here, else a sentence saying why not."""
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; choose one of {BACKENDS + ('auto',)}")
    if backend not in _STATUS:
        _STATUS[backend] = _probe(backend)
    return _STATUS[backend]


def available_backends() -> list[str]:
    """Backends usable on this machine, e.g. ["torch", "triton", "cpu"]."""
    return [b for b in BACKENDS if unavailable_reason(b) is None]


def _device_fits(backend: str, device: torch.device) -> bool:
    if backend == "cpu":
        return device.type == "cpu"
    if backend == "cuda":
        return device.type == "cuda"
    if backend == "triton":
        return device.type == "cuda" or (device.type == "cpu" and triton_interpreted())
    return True


def check_backend(backend: str) -> str:
    """Validate a backend name a user gave (``auto`` included); returns it."""
    if backend == "auto":
        return backend
    reason = unavailable_reason(backend)
    if reason is not None:
        raise BackendError(f"backend {backend!r} is not available: {reason}. Available: {available_backends()}")
    return backend


def resolve(backend: str, device: torch.device) -> str:
    """The backend that ``backend`` ("auto" included) runs on tensors of ``device``: auto's first usable one."""
    if backend != "auto":
        return backend
    return next((b for b in AUTO_ORDER.get(device.type, ()) if unavailable_reason(b) is None), "torch")


def lookup(op: str, backend: str, device: torch.device) -> Callable:
    """The implementation of ``op`` to run on tensors of ``device`` for ``backend`` (or "auto")."""
    if backend == "auto":
        order = AUTO_ORDER.get(device.type, ("torch",))
        for candidate in order:
            if unavailable_reason(candidate) is None and (op, candidate) in _IMPLS:
                if candidate == "torch":
                    _say_fallback(order, device)
                return _IMPLS[(op, candidate)]
        return lookup(op, "torch", device)
    check_backend(backend)
    if not _device_fits(backend, device):
        raise BackendError(
            f"backend {backend!r} cannot run {op} on {device.type} tensors; "
            f"move the inputs or pick another backend (available: {available_backends()})"
        )
    try:
        return _IMPLS[(op, backend)]
    except KeyError:
        have = sorted(b for (o, b) in _IMPLS if o == op)
        raise BackendError(f"op {op!r} has no {backend!r} implementation; it has {have}") from None


def implementation(op: str, backend: str) -> Callable | None:
    """The function registered for ``op`` on ``backend``, or None. Imports the backend's module but checks
    neither availability nor devices (tools such as the Triton compile check call kernels on a stand-in)."""
    importlib.import_module(_BACKEND_MODULES[backend])
    return _IMPLS.get((op, backend))


_WARNED: set[str] = set()


def _say_fallback(order, device: torch.device) -> None:
    """Once: 'auto' runs the reference because no fused backend is usable here (not because an op has none)."""
    missing = [f"{c}: {unavailable_reason(c)}" for c in order if c != "torch" and unavailable_reason(c)]
    if len(missing) == len(order) - 1:
        warn_once(f"mdrn_fast: backend 'auto' runs the torch reference on {device.type} tensors, no fused backend "
                  f"being usable ({'; '.join(missing)})")


def warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)
