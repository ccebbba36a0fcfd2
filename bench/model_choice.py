"""The model choice for color photos (mdrn_fast/model_choice.py), measured by the evaluation protocol.

    python bench/model_choice.py split --limit 4     # gray model per RGB channel vs per opponent channel, BSDS200
    python bench/model_choice.py table --limit 20    # the README table, CBSD68 at sigma 15 / 25 / 50

split decides COLOR_FALLBACK_SPLIT on a training set (BSDS200), never a test set: mean color PSNR of the gray
mdrn-base model of the nearest level run on each RGB channel and on each channel of the orthonormal
luminance/chroma basis (mdrn_fast.channel_split). table scores, on CBSD68 (the protocol's float noise), the
nearest color model (the old choice), the gray model of the level on each RGB channel, and what
mdrn_fast.model_choice picks at the true sigma; then the same two on the image clipped and rounded to 8 bits
as a PNG holds it, and "auto" on that PNG: its sigma estimated, the model chosen for the estimate (what
`mdrn-fast denoise` with default flags does).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from noisy_photos import noisy_file  # noqa: E402

from mdrn_fast.channel_split import GrayOnChannels  # noqa: E402
from mdrn_fast.evaluate import image_seed, noisy_version  # noqa: E402
from mdrn_fast.images import load_image, quantize  # noqa: E402
from mdrn_fast.inference import denoise_tensor  # noqa: E402
from mdrn_fast.metrics import psnr  # noqa: E402
from mdrn_fast.model_choice import choose, shipped_models  # noqa: E402
from mdrn_fast.noise_level import estimate_sigma  # noqa: E402
from mdrn_fast.paths import dataset  # noqa: E402
from mdrn_fast.weights_file import load_weights  # noqa: E402

_CACHE: dict = {}


def model(file: Path, backend: str, split: str | None = None):
    key = (file, split)
    if key not in _CACHE:
        m = load_weights(file, backend=backend)[0].eval()
        _CACHE[key] = GrayOnChannels(m, split).eval() if split else m
    return _CACHE[key]


def shipped(color: bool, level: float) -> Path:
    return next(s.file for s in shipped_models("mdrn-base") if s.color == color and s.lo == level and not s.blind)


def score(m, y: torch.Tensor, clean: np.ndarray) -> float:
    with torch.no_grad():
        out = denoise_tensor(y, m).float()
    return psnr(quantize(out[0].numpy().transpose(1, 2, 0)), quantize(clean))


def nearest_gray(sigma: float) -> float:
    return min((s.lo for s in shipped_models("mdrn-base") if not s.color and not s.blind),
               key=lambda lv: (abs(lv - sigma), -lv))


def split(args) -> None:
    files = dataset("BSDS200", args.data)[: args.limit]
    print(f"BSDS200, first {len(files)} images, mdrn-base gray model of the nearest level on each channel")
    print("| sigma | per RGB channel | per opponent channel |\n|---|---|---|")
    for sigma in args.sigmas:
        rows = {"rgb": [], "opponent": []}
        for path in files:
            clean = load_image(path, channels=3).pixels
            x = torch.from_numpy(np.ascontiguousarray(clean.transpose(2, 0, 1)))[None]
            y = noisy_version(x, sigma, image_seed(path.name, sigma))
            for how in rows:
                rows[how].append(score(model(shipped(False, nearest_gray(sigma)), args.backend, how), y, clean))
        print(f"| {sigma:g} | {np.mean(rows['rgb']):.2f} | {np.mean(rows['opponent']):.2f} |", flush=True)


def table(args) -> None:
    files = dataset("CBSD68", args.data)[: args.limit]
    color_levels = [s.lo for s in shipped_models("mdrn-base") if s.color and not s.blind]
    print(f"CBSD68, first {len(files)} images, mdrn-base, color PSNR (dB)")
    print("| sigma | input | nearest color model (before) | gray model per RGB channel | the choice | "
          "estimated sigma (mean) |\n|---|---|---|---|---|---|")
    for sigma in args.sigmas:
        t0 = time.time()
        near = min(color_levels, key=lambda lv: (abs(lv - sigma), -lv))
        before, rgb = (shipped(True, near), None), (shipped(False, nearest_gray(sigma)), "rgb")
        choice = choose("mdrn-base", sigma, True)
        cols = {k: [] for k in ("before", "rgb", "choice", "before8", "rgb8", "auto", "est")}
        same = 0
        for path in files:
            clean = load_image(path, channels=3).pixels
            x = torch.from_numpy(np.ascontiguousarray(clean.transpose(2, 0, 1)))[None]
            png, _ = noisy_file(clean, path.name, sigma, "png")
            y8 = torch.from_numpy(np.ascontiguousarray(png.transpose(2, 0, 1)))[None]
            y = noisy_version(x, sigma, image_seed(path.name, sigma))
            for key, inp in (("", y), ("8", y8)):
                got = {"before": score(model(*before[:1], args.backend, before[1]), inp, clean),
                       "rgb": score(model(*rgb[:1], args.backend, rgb[1]), inp, clean)}
                cols["before" + key].append(got["before"])
                cols["rgb" + key].append(got["rgb"])
                if key == "":
                    pick = (choice.shipped.file, choice.split)
                else:
                    est = estimate_sigma(png)
                    cols["est"].append(est)
                    auto = choose("mdrn-base", min(max(est, 0.5), 100), True)
                    pick = (auto.shipped.file, auto.split)
                    same += pick == (choice.shipped.file, choice.split)
                known = {before: got["before"], rgb: got["rgb"]}
                value = known[pick] if pick in known else score(model(pick[0], args.backend, pick[1]), inp, clean)
                cols["choice" if key == "" else "auto"].append(value)
        print(f"| {sigma:g} | protocol (float, unclipped), true sigma | {np.mean(cols['before']):.2f} "
              f"(color s{near:g}) | {np.mean(cols['rgb']):.2f} (gray s{nearest_gray(sigma):g}) | "
              f"{np.mean(cols['choice']):.2f} ({choice.summary}) | - |")
        print(f"| {sigma:g} | 8-bit PNG, `--sigma auto` | {np.mean(cols['before8']):.2f} | {np.mean(cols['rgb8']):.2f} | "
              f"{np.mean(cols['auto']):.2f} (the true sigma's choice on {same} of {len(files)}) | "
              f"{np.mean(cols['est']):.1f} |", flush=True)
        print(f"  ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["split", "table"])
    ap.add_argument("--data", help="data folder (default $MDRN_FAST_DATA)")
    ap.add_argument("--limit", type=int, help="the first N images")
    ap.add_argument("--sigmas", type=float, nargs="+", default=[15, 25, 50])
    ap.add_argument("--backend", default="auto")
    args = ap.parse_args()
    split(args) if args.what == "split" else table(args)


if __name__ == "__main__":
    main()
