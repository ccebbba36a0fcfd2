"""The evaluation protocol (docs/DESIGN.md section 6), denoise() on every input kind, pretrained weights lookup."""
import numpy as np
import pytest
import torch
from PIL import Image

import mdrn_fast
from mdrn_fast import MDRN
from mdrn_fast.evaluate import evaluate, image_seed, noisy_version, summary, table
from mdrn_fast.inference import denoise, denoise_tensor
from mdrn_fast.weights_file import save_weights


def tiny(in_channels=1):
    torch.manual_seed(0)
    return MDRN(in_channels=in_channels, channels=8, blocks=2, backend="torch").eval()


def test_noisy_input_is_neither_clipped_nor_quantized():
    clean = torch.full((1, 1, 64, 64), 0.02)
    y = noisy_version(clean, 25, seed=1)
    assert (y < 0).any() and (y > 1).any() or (y < 0).any()
    assert not torch.equal(y, torch.round(y * 255) / 255)
    assert torch.equal(y, noisy_version(clean, 25, seed=1)), "fixed seed -> the same noise"
    assert image_seed("a.png", 25) == image_seed("a.png", 25) != image_seed("b.png", 25)


def test_identity_model_gives_noisy_psnr(tmp_path):
    """With a model that returns its input, the PSNR must equal that of the noisy image clipped and rounded."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (24, 20)).astype(np.uint8)).save(tmp_path / "x.png")

    class Identity(torch.nn.Module):
        in_channels = 1

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, y):
            return y

    rows = evaluate(Identity(), [tmp_path / "x.png"], 25, progress=False)
    assert rows[0].psnr == pytest.approx(rows[0].psnr_noisy)
    assert 18 < rows[0].psnr < 22  # sigma 25 -> about 20.2 dB before clipping
    assert "mean (1)" in table(rows)
    assert summary(rows)["images"] == 1


@pytest.mark.parametrize("kind", ["float", "uint8", "uint16", "pil", "tensor3", "tensor4"])
def test_denoise_returns_the_kind_it_was_given(kind):
    m = tiny()
    base = np.random.default_rng(0).random((20, 28)).astype(np.float32)
    image = {"float": base, "uint8": (base * 255).astype(np.uint8), "uint16": (base * 65535).astype(np.uint16),
             "pil": Image.fromarray((base * 255).astype(np.uint8)), "tensor3": torch.from_numpy(base)[None],
             "tensor4": torch.from_numpy(base)[None, None]}[kind]
    out = denoise(image, m)
    assert type(out) is type(image)
    if isinstance(image, np.ndarray) or isinstance(image, torch.Tensor):
        assert out.shape == image.shape and out.dtype == image.dtype
    else:
        assert out.size == image.size


def test_pretrained_lookup(tmp_path, monkeypatch):
    from mdrn_fast import catalog as pre

    monkeypatch.setattr(pre, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="shipped: none"):
        mdrn_fast.pretrained("mdrn-base", sigma=25)
    m = tiny()
    save_weights(tmp_path / pre.weight_name("mdrn-base", 25, False), m, preset="mdrn-base", sigma=25)
    loaded = mdrn_fast.pretrained("mdrn-base", sigma=25, backend="torch")
    y = torch.rand(1, 1, 12, 12)
    with torch.no_grad():
        assert torch.equal(loaded(y), m(y))
    assert pre.list_pretrained()[0]["file"] == "mdrn-base-gray-s25.safetensors"


def test_images_under_the_ssim_window_get_psnr_and_a_note(tmp_path, capsys):
    from mdrn_fast.cli import main
    from mdrn_fast.metrics import ssim

    rng = np.random.default_rng(0)
    for name, shape in [("small.png", (7, 9)), ("large.png", (24, 20))]:
        Image.fromarray(rng.integers(0, 256, shape).astype(np.uint8)).save(tmp_path / name)
    with pytest.raises(ValueError, match="SSIM needs at least 11x11 pixels"):
        ssim(np.zeros((7, 9), np.uint8), np.zeros((7, 9), np.uint8))
    model = MDRN(channels=8, blocks=1, backend="torch")
    save_weights(tmp_path / "w.safetensors", model)
    assert main(["eval", "--set", str(tmp_path), "--weights", str(tmp_path / "w.safetensors"), "--backend", "torch",
                 "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "| small.png |" in out and "| n/a |" in out and "1 image(s) under 11x11 pixels" in out
    import json

    report = json.loads((tmp_path / "r.json").read_text())
    assert report["mean"]["ssim_images"] == 1 and report["rows"][1]["ssim"] is None
