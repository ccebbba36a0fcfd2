"""Every shipped weight file loads into its preset without pickle and denoises a test image clearly."""
import numpy as np
import pytest
import torch

import mdrn_fast
from mdrn_fast.catalog import WEIGHTS_DIR, list_pretrained
from mdrn_fast.evaluate import noisy_version
from mdrn_fast.images import quantize
from mdrn_fast.metrics import psnr
from mdrn_fast.weights_file import read_metadata

SHIPPED = sorted(WEIGHTS_DIR.glob("*.safetensors"))


def test_something_is_shipped():
    assert SHIPPED, "the package ships pretrained weights"
    assert {e["file"] for e in list_pretrained()} == {p.name for p in SHIPPED}
    assert mdrn_fast.list_pretrained is list_pretrained, "README names it at the top level"


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_weights_denoise(path):
    name, color, sigma = path.stem.rsplit("-", 2)  # name: a preset, or e.g. mdrn-tiny-hmds-a (a distilled one)
    model = mdrn_fast.pretrained(name, sigma=int(sigma[1:]), color=color == "color", backend="torch")
    assert model.config()["channels"] == mdrn_fast.PRESETS[read_metadata(path)["preset"]]["channels"]
    yy, xx = np.mgrid[0:96, 0:96] / 95.0  # smooth shading, a disc and an edge: a clean synthetic test image
    clean = (0.2 + 0.5 * xx + 0.25 * ((yy - 0.5) ** 2 + (xx - 0.5) ** 2 < 0.1)).astype(np.float32)
    x = torch.from_numpy(clean).expand(1, model.in_channels, 96, 96).contiguous()
    y = noisy_version(x, float(sigma[1:]), seed=0)
    with torch.no_grad():
        out = model(y)
    ref = quantize(x[0].numpy())
    gain = psnr(quantize(out[0].numpy()), ref) - psnr(quantize(y[0].numpy()), ref)
    assert gain > 5, f"denoising gained only {gain:.2f} dB"
