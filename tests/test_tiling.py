"""Large images in bounded memory: tiles from a memory budget, and how close each tiling mode stays to the
whole-image result (docs/DESIGN.md section 5)."""
import subprocess
import sys

import numpy as np
import pytest
import torch

import mdrn_fast
from mdrn_fast import MDRN, cpu_plan
from mdrn_fast.images import quantize
from mdrn_fast.inference import denoise_tensor
from mdrn_fast.tiling import bytes_per_pixel, core_for, halo_for, plan


def tiny(in_channels=1):
    torch.manual_seed(0)
    return MDRN(in_channels=in_channels, channels=8, blocks=2, backend="torch").eval()


def photo(h, w, c=1, sigma=25, seed=0):
    """A smooth scene with a few edges plus AWGN: [1, c, h, w] on the [0, 1] scale."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = 0.4 + 0.3 * np.sin(9 * xx) * np.cos(7 * yy) + 0.2 * (xx + yy > 0.8)
    img = np.stack([base * (1 - 0.2 * k) for k in range(c)])[None] + rng.normal(0, sigma / 255, (1, c, h, w))
    return torch.from_numpy(img.astype(np.float32))


def test_cores_partition_the_image_and_boxes_hold_their_halo():
    tiles = plan(100, 76, core=32, halo=8)
    cover = np.zeros((100, 76), int)
    for t in tiles:
        cover[t.core[0]:t.core[1], t.core[2]:t.core[3]] += 1
        assert t.box[0] == max(0, t.core[0] - 8) and t.box[3] == min(76, t.core[3] + 8)
        assert all(v % 4 == 0 for v in (t.box[0], t.box[2]))
    assert (cover == 1).all()


def test_one_tile_is_the_whole_image():
    m, y = tiny(), torch.rand(1, 1, 40, 52)
    assert torch.equal(denoise_tensor(y, m, tile=64), m(y))


@pytest.mark.parametrize("shape", [(1, 1, 90, 130), (2, 3, 77, 61)])
def test_exact_mode_equals_the_whole_image(shape):
    m, y = tiny(shape[1]), torch.rand(shape)
    tiled = denoise_tensor(y, m, tile=16, mode="exact")
    torch.testing.assert_close(tiled, m(y), atol=2e-6, rtol=1e-5)


def test_global_mode_stays_within_one_uint8_level_local_does_not():
    """Shipped mdrn-base weights on a noisy scene, in 12 tiles: the default mode is within 1 uint8 level of
    the whole image; local attention alone is not."""
    m = mdrn_fast.pretrained("mdrn-base", sigma=25)
    y = photo(144, 192)
    whole = quantize(m(y)[0].detach().numpy()).astype(int)
    diff = {mode: np.abs(quantize(denoise_tensor(y, m, tile=48, mode=mode)[0].numpy()).astype(int) - whole)
            for mode in ("global", "local")}
    assert diff["global"].max() <= 1 and (diff["global"] > 0).mean() < 0.01, diff["global"].max()
    assert (diff["local"] > 0).sum() > 10 * max(1, (diff["global"] > 0).sum())


@pytest.mark.parametrize("backend", ["torch", "auto"])
def test_the_memory_budget_sets_the_tile(backend):
    m = mdrn_fast.mdrn("mdrn-base", backend=backend)
    y = torch.rand(1, 1, 8, 8)
    assert halo_for(m) == 48 and m.receptive_radius == 45
    core = core_for(m, 1 << 30, y, 48)
    assert (core + 96) ** 2 * bytes_per_pixel(m, y) <= 1 << 30 and core % 4 == 0
    assert core_for(m, 1 << 20, y, 48) == 32, "never below 8 grid cells"


def test_the_cpu_plan_gets_larger_tiles():
    """It keeps about half as many maps alive per pixel as op-by-op inference (mdrn_fast/cpu_plan.py)."""
    y = torch.rand(1, 1, 8, 8)
    if cpu_plan.unavailable_reason() is not None:
        pytest.skip(f"cpu plan unavailable: {cpu_plan.unavailable_reason()}")
    m = mdrn_fast.mdrn("mdrn-base", backend="cpu")
    plan_bytes = bytes_per_pixel(m, y)
    m.use_cpu_plan = False
    assert plan_bytes * 2 == bytes_per_pixel(m, y)


def test_tile_arguments_are_checked():
    with pytest.raises(ValueError, match="multiples of 4"):
        denoise_tensor(torch.rand(1, 1, 90, 90), tiny(), tile=30, overlap=8)
    with pytest.raises(ValueError, match="mode"):
        denoise_tensor(torch.rand(1, 1, 90, 90), tiny(), tile=32, mode="fast")


PEAK = """
import resource, sys, torch, mdrn_fast
from mdrn_fast.inference import denoise_tensor
torch.set_num_threads(2)
m = mdrn_fast.mdrn("mdrn-base", in_channels=3).eval()
y = torch.rand(1, 3, 800, 600)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
denoise_tensor(y, m, memory={memory})
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_peak_memory_follows_the_budget():
    """0.48 megapixels of color whole need about 0.9 GB of activations; a 128 MB budget keeps the growth of the
    process's peak resident memory under 400 MB (activations, 6 MB image buffers, allocator slack)."""
    out = subprocess.run([sys.executable, "-c", PEAK.format(memory=128 << 20)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    grown_mb = int(out.stdout.split()[-1])
    assert grown_mb < 400, f"peak grew by {grown_mb} MB"
