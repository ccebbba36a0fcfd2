"""Estimating the noise level of an image, to pick the fitting model for a photo of unknown noise.

Gaussian noise of std sigma gives the finest diagonal Haar wavelet coefficients, (a - b - c + d) / 2 over
2x2 blocks, the same std, while smooth image content gives them almost nothing: the median absolute
coefficient over 0.6745 (the median of |N(0, 1)|) estimates sigma, robustly to the edges and texture that
fill only a minority of the coefficients (Donoho and Johnstone's estimator). For color images the channels'
estimates are averaged. tests/test_noise_level.py measures it on images with known noise.
"""
from __future__ import annotations

import numpy as np

MAD_TO_STD = 0.6745


def estimate_sigma(pixels: np.ndarray) -> float:
    """The AWGN std of ``pixels`` (float [H, W] or [H, W, C] in [0, 1]) on the 0-255 scale."""
    a = np.asarray(pixels, dtype=np.float32)
    if a.ndim == 2:
        a = a[..., None]
    h, w = a.shape[0] // 2 * 2, a.shape[1] // 2 * 2
    if h == 0 or w == 0:
        return 0.0
    a = a[:h, :w]
    hh = (a[0::2, 0::2] - a[0::2, 1::2] - a[1::2, 0::2] + a[1::2, 1::2]) / 2
    per_channel = np.median(np.abs(hh.reshape(-1, a.shape[2])), axis=0) / MAD_TO_STD
    return float(per_channel.mean() * 255.0)
