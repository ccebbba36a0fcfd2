"""The noise estimate behind `--sigma auto` holds for PNGs, JPEGs and grainy photos, and the command line says
when an image looks clean and what it did with it. On the standard sets (README, Photos) the median absolute
error is under 1.1 at every level; here synthetic pictures keep the tests quick."""
import io

import numpy as np
import pytest
from PIL import Image

from mdrn_fast.cli import main
from mdrn_fast.images import jpeg_quality, load_image
from mdrn_fast.noise_level import estimate_sigma, haar_sigma

rng = np.random.default_rng(0)


def picture(h=128, w=128, c=1):
    yy, xx = np.mgrid[0:h, 0:w]
    base = 100 + 60 * np.sin(xx / 7.0) * np.cos(yy / 9.0) + 20 * (((xx // 16) + (yy // 16)) % 2)
    return np.stack([base + 20 * k for k in range(c)], axis=2)


def as_file(a: np.ndarray, quality: int | None):
    """uint8 [H, W, C] saved as PNG (None) or JPEG and read back: (float pixels, the quality read back)."""
    u8 = np.clip(a, 0, 255).round().astype(np.uint8)
    if quality is None:
        return u8.astype(np.float32) / 255, None
    buf = io.BytesIO()
    Image.fromarray(u8[..., 0] if u8.shape[2] == 1 else u8).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as im:
        q, out = jpeg_quality(im), np.asarray(im)
    return (out[..., None] if out.ndim == 2 else out).astype(np.float32) / 255, q


@pytest.mark.parametrize("quality", [50, 75, 90, 95])
def test_jpeg_quality_is_read_back(tmp_path, quality):
    Image.fromarray(picture(32, 32, 3).astype(np.uint8)).save(tmp_path / "q.jpg", quality=quality)
    assert abs(load_image(tmp_path / "q.jpg").jpeg_quality - quality) <= 1
    Image.fromarray(picture(32, 32, 3).astype(np.uint8)).save(tmp_path / "q.png")
    assert load_image(tmp_path / "q.png").jpeg_quality is None


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("quality", [None, 90, 75])
@pytest.mark.parametrize("sigma", [15, 25, 50])
def test_estimate_holds_for_png_and_jpeg(channels, quality, sigma):
    clean = picture(c=channels)
    noisy, q = as_file(clean + rng.normal(0, sigma, clean.shape), quality)
    assert estimate_sigma(noisy, q) == pytest.approx(sigma, rel=0.2, abs=1.5)  # synthetic: looser


def test_color_jpeg_no_longer_reads_low():
    """Donoho's estimate reads a quality-90 color JPEG with sigma 50 as about 34; estimate_sigma as about 50."""
    clean = picture(c=3)
    noisy, q = as_file(clean + rng.normal(0, 50, clean.shape), 90)
    assert haar_sigma(noisy) < 40
    assert estimate_sigma(noisy, q) == pytest.approx(50, abs=5)


@pytest.mark.parametrize("quality", [None, 90, 75])
def test_grain_in_clumps_is_not_read_as_clean(quality):
    """Grain of 2x2-pixel clumps (as real sensor noise after demosaicing is correlated) has no energy in the
    finest diagonal Haar band: Donoho's estimate reads 0. estimate_sigma sees it."""
    clean = picture()
    grain = np.kron(rng.normal(0, 20, (64, 64)), np.ones((2, 2)))[..., None]
    noisy, q = as_file(clean + grain, quality)
    assert haar_sigma(noisy) < 4
    assert estimate_sigma(noisy, q) > 10


def test_a_clean_image_is_said_to_look_clean_and_left_unchanged(tmp_path, capsys):
    clean = picture(64, 64, 1)[..., 0].round().astype(np.uint8)
    Image.fromarray(clean).save(tmp_path / "clean.png")
    assert main(["denoise", str(tmp_path / "clean.png"), "-o", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "looks clean, written unchanged" in out and "--sigma" in out
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o" / "clean.png")), clean)
    assert main(["denoise", str(tmp_path / "clean.png"), "-o", str(tmp_path / "o2"), "--sigma", "15"]) == 0
    assert "looks clean" not in capsys.readouterr().out, "a given --sigma always denoises"


def test_color_photo_at_sigma_50_with_default_flags_gets_the_gray_s50_model(tmp_path, capsys):
    clean = picture(64, 64, 3)
    noisy = np.clip(clean + rng.normal(0, 50, clean.shape), 0, 255).astype(np.uint8)
    Image.fromarray(noisy).save(tmp_path / "c50.jpg", quality=90)
    assert main(["denoise", str(tmp_path / "c50.jpg"), "-o", str(tmp_path / "o")]) == 0
    captured = capsys.readouterr()
    assert "gray model s50 on each RGB channel" in captured.out
    assert captured.err.count("no color mdrn-base model at sigma") == 1, "said once, with --sigma auto too"


@pytest.mark.parametrize("set_name, channels", [("BSD68", 1), ("CBSD68", 3)])
def test_median_error_on_the_test_set_is_under_2(set_name, channels):
    """The first 6 images of the set, protocol noise, PNG and JPEG q75 (README's table has all 68)."""
    import torch

    from mdrn_fast.evaluate import image_seed, noisy_version
    from mdrn_fast.paths import dataset

    try:
        files = dataset(set_name)[:6]
    except FileNotFoundError as e:
        pytest.skip(f"needs the {set_name} test set: {e}")
    for sigma in (5, 25, 55):
        for quality in (None, 75):
            errors = []
            for path in files:
                clean = load_image(path, channels=channels).pixels
                x = torch.from_numpy(np.ascontiguousarray(clean.transpose(2, 0, 1)))[None]
                y = noisy_version(x, sigma, image_seed(path.name, sigma))[0].numpy().transpose(1, 2, 0)
                noisy, q = as_file(y * 255, quality)
                errors.append(abs(estimate_sigma(noisy, q) - sigma))
            assert np.median(errors) < 2, (sigma, quality, errors)
