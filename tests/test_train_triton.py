"""The training path of the ``triton`` backend (its own NHWC 3x3 convolutions forward and backward, the fused
degrade / reconstruct / fuse / attention ops) and per-block recompute, on the Triton interpreter at tiny sizes:
the same parameters as the ``torch`` backend after 3 steps, recompute bitwise equal to no recompute in float64,
and a float64 gradient check of the whole network through the fused path."""
import pytest
import torch

from helpers import random_gray_pngs, require
from mdrn_fast import MDRN
from mdrn_fast.train import TrainConfig, run

TINY = dict(channels=4, blocks=1)


@pytest.fixture
def images(tmp_path):
    return random_gray_pngs(tmp_path / "imgs", 2, (20, 20))


@pytest.mark.parametrize("recompute", ["off", "on"])
def test_three_training_steps_through_triton_match_torch(images, tmp_path, recompute):
    require("triton")
    params = {}
    for backend in ("torch", "triton"):
        cfg = TrainConfig(preset="mdrn-tiny", overrides=TINY, train_set=str(images), val_images=0, patch=8, batch=2,
                          steps=3, workers=0, backend=backend, device="cpu", out=str(tmp_path / backend),
                          log_every=1, recompute=recompute)
        result = run(cfg)
        params[backend] = dict(result["model"].named_parameters())
    for name, p in params["torch"].items():
        torch.testing.assert_close(params["triton"][name], p, atol=1e-5, rtol=1e-4, msg=name)


def _grads(model, x):
    model.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    out, feats = model(x, return_features=True)
    (out.square().sum() + sum(f.mean() for f in feats)).backward()
    return [x.grad] + [p.grad for p in model.parameters()]


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_recompute_gives_bitwise_the_same_gradients_in_float64(backend):
    require(backend)
    torch.manual_seed(0)
    model = MDRN(**TINY, backend=backend).double().train()
    x = torch.rand(2, 1, 9, 11, dtype=torch.float64)
    model.recompute = False
    plain = _grads(model, x)
    model.recompute = True
    again = _grads(model, x)
    assert model._recomputes(x)
    for a, b in zip(plain, again):
        assert torch.equal(a, b)


def test_recompute_is_on_by_default_only_on_a_gpu_and_only_in_training():
    model = MDRN(**TINY, backend="torch")
    x = torch.rand(1, 1, 8, 8)
    assert model.recompute == "auto" and not model.train()._recomputes(x), "auto: off on the CPU"
    model.recompute = True
    assert model._recomputes(x) and not model.eval()._recomputes(x)
    with torch.no_grad():
        assert not model.train()._recomputes(x)


def test_the_fused_training_path_passes_gradcheck_in_float64():
    require("triton")
    torch.manual_seed(0)
    model = MDRN(channels=2, blocks=1, backend="triton").double().train()
    model.recompute = True
    x = torch.rand(1, 1, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(model, (x,), eps=1e-6, atol=1e-7, fast_mode=True)
