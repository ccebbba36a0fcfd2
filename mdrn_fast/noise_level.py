"""Estimating the noise level of an image, to pick the fitting model for a photo of unknown noise.

Donoho and Johnstone's estimator (haar_sigma) reads the median absolute finest diagonal Haar coefficient: right
on lossless images, but a JPEG's quantization smooths the finest detail away (color JPEGs at quality 90 with
true sigma 15 / 25 / 50 read 11.4 / 17.3 / 30.9, and a grainy JPEG can read 0). estimate_sigma therefore reads
a few robust statistics of the image's luminance (Haar subbands at two scales, a Laplacian residual, the
flattest 8x8 blocks, the 8x8 DCT bands in which JPEG keeps or drops the noise) plus the JPEG quality when the
image came from a JPEG, and maps them to sigma with a small network (two hidden layers, in
noise_estimator.json) fitted on the training sets only (Train400 gray, BSD432 gray and color, PNG and JPEG at
quality 50-98; bench/noise_estimator_train.py). Its error on BSD68 / CBSD68 is in README (Photos).
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

MAD_TO_STD = 0.6745
MEAN_ABS_TO_STD = float(np.sqrt(np.pi / 2))
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601, JPEG's own luminance
LUMA_NOISE = float(np.sqrt((LUMA ** 2).sum()))  # white noise of std s in R, G, B has std s * this in luma
ESTIMATOR = Path(__file__).with_name("noise_estimator.json")
# zig-zag-free frequency bands of the 8x8 DCT by u + v: JPEG keeps the low ones and quantizes the high ones away
_BANDS = ((1, 3), (4, 6), (7, 9), (10, 14))
MAX_SIDE = 2048  # larger images are read from their middle 2048 x 2048


def haar_sigma(pixels: np.ndarray) -> float:
    """Donoho's estimate: the AWGN std of ``pixels`` (float [H, W] or [H, W, C] in [0, 1]) on the 0-255
    scale, the channels' estimates averaged."""
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


def _dct_matrix(n: int = 8) -> np.ndarray:
    k, i = np.mgrid[0:n, 0:n]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2 / n)
    m[0] /= np.sqrt(2)
    return m.astype(np.float32)


_DCT = _dct_matrix()


def features(pixels: np.ndarray, jpeg_quality: int | None = None) -> np.ndarray:
    """The estimator's inputs for float [H, W] / [H, W, C] pixels in [0, 1] (luminance for color)."""
    a = np.asarray(pixels, dtype=np.float32)
    if a.ndim == 2:
        a = a[..., None]
    color = a.shape[2] == 3
    y = (a @ LUMA if color else a[..., 0]) * 255.0
    h, w = y.shape[0] // 8 * 8, y.shape[1] // 8 * 8
    y = y[:h, :w]
    out = []
    hh = (y[0::2, 0::2] - y[0::2, 1::2] - y[1::2, 0::2] + y[1::2, 1::2]) / 2
    hl = (y[0::2, 0::2] - y[0::2, 1::2] + y[1::2, 0::2] - y[1::2, 1::2]) / 2
    lh = (y[0::2, 0::2] + y[0::2, 1::2] - y[1::2, 0::2] - y[1::2, 1::2]) / 2
    ll = (y[0::2, 0::2] + y[0::2, 1::2] + y[1::2, 0::2] + y[1::2, 1::2]) / 4  # noise / 2
    hh2 = (ll[0::2, 0::2] - ll[0::2, 1::2] - ll[1::2, 0::2] + ll[1::2, 1::2])  # noise std again, at scale 2
    for band in (hh, hl, lh, hh2):
        b = np.abs(band)
        out += [np.median(b) / MAD_TO_STD, b.mean() * MEAN_ABS_TO_STD, np.percentile(b, 90) / 1.645]
    lap = (4 * y[1:-1, 1:-1] - 2 * (y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:])
           + y[:-2, :-2] + y[:-2, 2:] + y[2:, :-2] + y[2:, 2:]) / 6  # Immerkaer's kernel: noise std again
    out += [np.median(np.abs(lap)) / MAD_TO_STD, np.abs(lap).mean() * MEAN_ABS_TO_STD]
    blocks = y.reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 8, 8)
    stds = blocks.reshape(len(blocks), -1).std(axis=1)
    out += list(np.percentile(stds, [5, 20, 50]))
    coef = np.abs(_DCT @ blocks @ _DCT.T)  # on the JPEG grid (the image's top-left corner)
    u, v = np.mgrid[0:8, 0:8]
    for lo, hi in _BANDS:
        c = coef[:, (u + v >= lo) & (u + v <= hi)]
        out += [np.median(c) / MAD_TO_STD, c.mean() * MEAN_ABS_TO_STD, np.percentile(c, 90) / 1.645]
    logs = np.log1p(np.asarray(out, dtype=np.float64))
    jpeg = jpeg_quality is not None
    return np.concatenate([logs, [float(color), float(jpeg), (jpeg_quality or 100) / 100.0]]).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _network() -> dict:
    return {k: np.asarray(v, dtype=np.float32) for k, v in json.loads(ESTIMATOR.read_text()).items()}


def predict(f: np.ndarray, net: dict) -> np.ndarray:
    """The estimator network on features [N, F] -> sigma [N] (softplus keeps it positive)."""
    x = (f - net["mean"]) / net["std"]
    for i in range(3):
        x = x @ net[f"w{i}"] + net[f"b{i}"]
        if i < 2:
            x = np.maximum(x, 0.0)
    return np.logaddexp(0.0, x[:, 0])


def estimate_sigma(pixels: np.ndarray, jpeg_quality: int | None = None) -> float:
    """The AWGN std of ``pixels`` (float [H, W] or [H, W, C] in [0, 1], per channel) on the 0-255 scale, as it
    was before any JPEG compression; ``jpeg_quality``: the quality the image was saved with, when it came from
    a JPEG (mdrn_fast.images.LoadedImage.jpeg_quality). Images under 16x16 pixels read haar_sigma; larger than
MAX_SIDE, their middle."""
    a = np.asarray(pixels, dtype=np.float32)
    if a.shape[0] < 16 or a.shape[1] < 16 or not ESTIMATOR.exists():
        return haar_sigma(a)
    return float(predict(features(_center(a), jpeg_quality)[None], _network())[0])


def _center(a: np.ndarray, size: int = MAX_SIDE) -> np.ndarray:
    """At most size x size from the middle, at offsets on the 8x8 JPEG grid: a 24 MP photo's statistics from
    4 MP, in a fraction of the time and memory."""
    top = max(0, (a.shape[0] - size) // 2) // 8 * 8
    left = max(0, (a.shape[1] - size) // 2) // 8 * 8
    return a[top:top + size, left:left + size]
