"""PSNR and SSIM as the evaluation protocol defines them."""
import numpy as np
import pytest
from skimage.metrics import structural_similarity

from mdrn_fast.metrics import psnr, ssim


def test_psnr_hand_computed():
    a = np.zeros((4, 4), np.uint8)
    b = a.copy()
    b[0, 0] = 16  # MSE = 256 / 16 = 16 -> PSNR = 10 log10(255^2 / 16)
    assert psnr(a, b) == pytest.approx(10 * np.log10(255**2 / 16))
    assert psnr(a, a) == float("inf")


def test_psnr_refuses_floats_and_shape_mismatch():
    with pytest.raises(TypeError, match="uint8"):
        psnr(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="shape"):
        psnr(np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8))


@pytest.mark.parametrize("shape", [(40, 37), (33, 29, 3)])
def test_ssim_agrees_with_scikit_image(shape):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, shape).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 40, shape), 0, 255).astype(np.uint8)
    ref = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255,
                                channel_axis=2 if len(shape) == 3 else None)
    # scikit-image crops (win_size - 1) / 2 = 5 pixels of the SSIM map; ours keeps the 'valid' map: the same region
    assert ssim(a, b) == pytest.approx(ref, abs=1e-6)
    assert ssim(a, a) == pytest.approx(1.0)
