"""What only a GPU can check: mdrn-tiny and mdrn-base on each fused backend at a realistic size in float32,
float16 and bfloat16 (output, input gradient, weight gradients), and the CLI denoising a real photo through
each backend. Each model test prints its errors (shown with pytest -rA)."""
import copy

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import HAS_GPU, require
from mdrn_fast.cli import main
from mdrn_fast.models import mdrn

pytestmark = pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA GPU")
GPU_BACKENDS = ["triton", "cuda"]


def _run(model, y, grad):
    """(output, input gradient, weight gradients) of one forward and backward."""
    y = y.detach().requires_grad_()
    out = model(y)
    out.backward(grad.to(out.dtype))
    return [out, y.grad] + [p.grad for p in model.parameters()]


def _err(got, truth) -> float:
    return (got.double() - truth).abs().max().item()


@pytest.mark.parametrize("backend", GPU_BACKENDS)
@pytest.mark.parametrize("preset", ["mdrn-tiny", "mdrn-base"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_model_at_realistic_size(backend, preset, dtype):
    """The fused model's error against float64, for the output and every gradient, stays within twice the error
    the torch reference itself shows in the same dtype, taking the worse of its NCHW and channels_last runs
    (two equally valid roundings: their spread is the dtype's own noise through this network), plus a floor of
    1e-3 of the largest value."""
    require(backend)
    torch.manual_seed(0)
    ref = mdrn(preset, backend="torch").cuda()
    fused = copy.deepcopy(ref).set_backend(backend)
    y = torch.rand(4, 1, 128, 128, device="cuda")
    grad = torch.randn(4, 1, 128, 128, device="cuda")
    nhwc = torch.channels_last
    truth = _run(copy.deepcopy(ref).double(), y.double(), grad.double())
    ref_nchw = _run(copy.deepcopy(ref).to(dtype), y.to(dtype), grad)
    ref_nhwc = _run(copy.deepcopy(ref).to(dtype, memory_format=nhwc), y.to(dtype).contiguous(memory_format=nhwc), grad)
    got = _run(fused.to(dtype), y.to(dtype), grad)
    names = ["output", "input grad"] + [f"grad {n}" for n, _ in ref.named_parameters()]
    worst = []
    for name, g, r1, r2, t in zip(names, got, ref_nchw, ref_nhwc, truth):
        err, ref_err, scale = _err(g, t), max(_err(r1, t), _err(r2, t)), t.abs().max().item()
        worst.append((err / (2 * ref_err + 1e-3 * scale + 1e-12), name, err, ref_err))
        assert err <= 2 * ref_err + 1e-3 * scale, f"{name}: error {err:.3g} vs the reference's own {ref_err:.3g}"
    ratio, name, err, ref_err = max(worst)
    print(f"ERRORS {backend} {preset} {dtype}: output {_err(got[0], truth[0]):.3g} "
          f"(reference {_err(ref_nchw[0], truth[0]):.3g}), input grad {_err(got[1], truth[1]):.3g}; "
          f"closest to its bound ({ratio:.2f} of it): {name} {err:.3g} (reference {ref_err:.3g})")


@pytest.fixture
def photo(tmp_path):
    """A real gray photo (Set12 when the data is here), else a smooth synthetic one."""
    from mdrn_fast.paths import dataset

    try:
        return dataset("Set12")[0]
    except FileNotFoundError:
        yy, xx = np.mgrid[0:192, 0:160]
        Image.fromarray((127 + 100 * np.sin(xx / 9.0) * np.cos(yy / 13.0)).astype(np.uint8)).save(tmp_path / "p.png")
        return tmp_path / "p.png"


def test_cli_denoises_a_photo_the_same_on_every_backend(photo, tmp_path):
    outputs = {}
    for backend in ["torch"] + GPU_BACKENDS:
        require(backend)
        out = tmp_path / backend
        assert main(["denoise", str(photo), "-o", str(out), "--sigma", "25", "--backend", backend,
                     "--device", "cuda"]) == 0
        (written,) = out.iterdir()
        outputs[backend] = np.asarray(Image.open(written)).astype(int)
    for backend in GPU_BACKENDS:
        diff = np.abs(outputs[backend] - outputs["torch"])
        assert diff.max() <= 1, f"{backend}: {int((diff > 1).sum())} pixels differ by more than one level"
