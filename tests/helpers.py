"""Shared test helpers: dtype tolerances, devices, and a comparison that shows what differs."""
from __future__ import annotations

import torch

from mdrn_fast.registry import BACKENDS, unavailable_reason

HAS_GPU = torch.cuda.is_available()
FUSED = [b for b in BACKENDS if b != "torch"]  # every backend with kernels of its own, tested against "torch"
# (atol, rtol) of a fused kernel against the float32/float64 reference
TOLERANCES = {
    torch.float64: (1e-10, 1e-8),
    torch.float32: (1e-5, 1e-4),
    torch.float16: (2e-3, 2e-3),
    torch.bfloat16: (2e-2, 2e-2),
}


def device_for(backend: str) -> str:
    """The device a backend's tests run on here: CUDA for cuda (and triton when a GPU is present)."""
    if backend == "cuda" or (backend == "triton" and HAS_GPU):
        return "cuda"
    return "cpu"


def usable_backends(backends: list[str]) -> list[str]:
    """The backends of ``backends`` usable here (for parametrizing tests that would otherwise all skip)."""
    return [b for b in backends if unavailable_reason(b) is None]


def require(backend: str):
    """Skip the calling test, with the reason, when ``backend`` is not usable here."""
    import pytest

    reason = unavailable_reason(backend)
    if reason is not None:
        pytest.skip(f"backend {backend!r} unavailable: {reason}")


def assert_close(actual: torch.Tensor, expected: torch.Tensor, atol: float, rtol: float, name: str = "") -> None:
    """torch.testing.assert_close, plus the first mismatching elements (NaN and Inf included)."""
    assert actual.shape == expected.shape, f"{name}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    a, e = actual.detach().double().cpu(), expected.detach().double().cpu()
    bad = ~torch.isclose(a, e, atol=atol, rtol=rtol, equal_nan=True)
    if bad.any():
        idx = bad.nonzero()[:5].tolist()
        rows = [f"  at {i}: got {a[tuple(i)].item():.8g}, expected {e[tuple(i)].item():.8g}" for i in idx]
        err = (a - e).abs().nan_to_num(float("inf")).max().item()
        raise AssertionError(f"{name}: {int(bad.sum())} of {bad.numel()} elements differ "
                             f"(max abs err {err:.3g}, atol {atol}, rtol {rtol}):\n" + "\n".join(rows))


def check_low_precision(name, got, ref_low, ref_64):
    """got may differ from float64 by at most twice the reference's own low-precision error (plus a floor)."""
    ref_err = (ref_low.double().cpu() - ref_64).abs().max().item()
    err = (got.double().cpu() - ref_64).abs().max().item()
    scale = ref_64.abs().max().item() + 1e-6
    assert err <= 2 * ref_err + 1e-3 * scale, f"{name}: error {err:.3g} vs reference's own {ref_err:.3g}"


def max_abs_err(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return (actual.detach().double().cpu() - expected.detach().double().cpu()).abs().max().item()


def random_gray_pngs(folder, count: int, shape: tuple[int, int]):
    """``folder`` filled with ``count`` random 8-bit gray PNGs (0.png, 1.png, ...): a tiny training set."""
    import numpy as np
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, shape).astype(np.uint8)).save(folder / f"{i}.png")
    return folder
