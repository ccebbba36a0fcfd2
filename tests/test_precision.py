"""float32 precision: tests compare IEEE float32 (no TF32), and the fused Triton GEMMs use TF32 only where
PyTorch's matmul switch allows it, as at::mm does for the C++ backend."""
import pytest
import torch

from helpers import HAS_GPU, assert_close, require
from mdrn_fast import ops
from op_cases import make_case, prepare


@pytest.fixture
def matmul_switch():
    """Restores the matmul switch (legacy API) after a test that sets it."""
    before = torch.backends.cuda.matmul.allow_tf32
    yield torch.backends.cuda.matmul
    torch.backends.cuda.matmul.allow_tf32 = before


def test_tests_run_without_tf32():
    """cuDNN's default TF32 convolutions would put the torch reference ~1e-3 away from IEEE fused GEMMs on a
    GPU (conftest turns both switches off)."""
    assert not torch.backends.cudnn.allow_tf32
    assert not torch.backends.cuda.matmul.allow_tf32


def test_triton_gemm_precision_follows_the_matmul_switch(matmul_switch):
    pytest.importorskip("triton")
    from mdrn_fast.kernels._gemm import dot_precision

    assert dot_precision(torch.float32) == "ieee"
    assert dot_precision(torch.float64) == "ieee"
    matmul_switch.allow_tf32 = True
    assert dot_precision(torch.float32) == "tf32"
    assert dot_precision(torch.float64) == "ieee", "fp64 never drops to TF32"


@pytest.mark.skipif(not HAS_GPU, reason="TF32 needs a GPU's tensor cores")
def test_triton_tf32_is_really_used_when_allowed(matmul_switch):
    """With TF32 allowed the Triton degrade is within TF32's error of the float64 reference, and clearly less
    exact than with it off: the switch reaches the kernel."""
    require("triton")
    case = make_case("degrade", (2, 32, 64, 64), 4)
    ref = ops.degrade(**prepare(case, torch.float64, "cpu", grad=False), backend="torch")
    errors = {}
    for tf32 in (False, True):
        matmul_switch.allow_tf32 = tf32
        out = ops.degrade(**prepare(case, torch.float32, "cuda", grad=False), backend="triton")
        errors[tf32] = (out.double().cpu() - ref).abs().max().item()
    assert errors[True] < 2e-2, errors
    assert errors[True] > 10 * errors[False], errors
    assert_close(out, ref, 2e-2, 2e-2, "tf32 degrade")
