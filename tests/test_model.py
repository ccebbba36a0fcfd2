"""MDRN reference model: shapes, padding, presets, state_dict, gradients, features, errors."""
import pytest
import torch

import mdrn_fast
from mdrn_fast import MDRN, count_parameters, mdrn
from mdrn_fast.registry import BackendError

DNCNN_PARAMS = 556_000  # DnCNN (17 layers, 64 channels): 556K parameters


def small(in_channels=1, **kw):
    return MDRN(in_channels=in_channels, channels=8, blocks=2, backend="torch", **kw)


@pytest.mark.parametrize("shape", [(1, 1, 37, 53), (2, 3, 64, 61), (1, 1, 4, 4), (1, 1, 1, 1), (1, 1, 2, 9)])
def test_output_shape_equals_input_shape(shape):
    m = small(in_channels=shape[1])
    y = torch.rand(shape)
    assert m(y).shape == y.shape


def test_no_padding_when_multiple_of_4(monkeypatch):
    m = small()
    calls = []
    import torch.nn.functional as F

    real_pad = F.pad
    monkeypatch.setattr(F, "pad", lambda *a, **k: calls.append(a) or real_pad(*a, **k))
    m(torch.rand(1, 1, 32, 48))
    assert calls == []
    m(torch.rand(1, 1, 33, 48))
    assert len(calls) == 1


def test_padding_is_reflect_and_crop_exact():
    m = small().eval()
    y = torch.rand(1, 1, 30, 29)
    padded = torch.nn.functional.pad(y, (0, 3, 0, 2), mode="reflect")
    with torch.no_grad():
        assert torch.equal(m(y), m(padded)[..., :30, :29])


def test_preset_parameter_counts():
    counts = {p: count_parameters(mdrn(p)) for p in mdrn_fast.PRESETS}
    assert counts["mdrn-tiny"] < counts["mdrn-base"] < counts["mdrn-large"]
    assert counts["mdrn-base"] < DNCNN_PARAMS
    # C=32, B=6, gray: computed by hand from docs/DESIGN.md section 2
    assert counts["mdrn-base"] == 509_905


def test_unknown_preset():
    with pytest.raises(ValueError, match="mdrn-tiny"):
        mdrn("mdrn-huge")


def test_state_dict_round_trip(tmp_path):
    a, b = small(), small()
    torch.save(a.state_dict(), tmp_path / "w.pt")
    b.load_state_dict(torch.load(tmp_path / "w.pt", weights_only=True))
    y = torch.rand(2, 1, 20, 24)
    with torch.no_grad():
        assert torch.equal(a(y), b(y))


def test_gradient_reaches_every_parameter():
    m = small(in_channels=3)
    for block in m.body:  # keep the attention's ReLU units alive, so that zero is a real failure
        torch.nn.init.constant_(block.att1.bias, 1.0)
    m(torch.rand(2, 3, 16, 20)).square().mean().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_return_features():
    m = small()
    y = torch.rand(1, 1, 17, 18)
    out, feats = m(y, return_features=True)
    assert out.shape == y.shape
    assert len(feats) == m.blocks
    assert all(f.shape == (1, m.channels, 20, 20) for f in feats)


def test_rejects_bad_input():
    m = small()
    with pytest.raises(ValueError, match=r"\[N, 1, H, W\]"):
        m(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\[N, 1, H, W\]"):
        m(torch.rand(8, 8))
    with pytest.raises(TypeError, match="floating"):
        m(torch.zeros(1, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="non-empty"):
        m(torch.rand(0, 1, 8, 8))


def test_backend_errors_name_the_available_ones():
    with pytest.raises(BackendError, match="auto"):
        small().set_backend("vulkan")
    reason_backend = [b for b in ("cuda", "triton", "cpu") if b not in mdrn_fast.available_backends()]
    for b in reason_backend:
        with pytest.raises(BackendError, match="Available"):
            small().set_backend(b)


def test_available_backends_always_has_torch():
    assert mdrn_fast.available_backends()[0] == "torch"
