"""The noise estimator behind `--sigma auto` (mdrn_fast/noise_level.py): fit it on training sets, and measure
its error on test sets.

    python bench/noise_estimator.py train --per-image 6   # writes mdrn_fast/noise_estimator.json
    python bench/noise_estimator.py table --limit 68      # the README table (BSD68 gray, CBSD68 color)

train: Train400 (gray) and BSD432 (gray and color; BSDS500 minus the 68 test images), each image at a few
noise levels drawn uniformly in [0, 60] (white noise, grain or signal-dependent noise: training_noise),
saved as PNG (a third) or JPEG at a quality drawn in [50, 98]; a tenth of the images held out to report.
table: the protocol's noise (per-image seed) on the test sets at sigma 5-55, as PNG and JPEG quality 90 / 75;
median absolute error of Donoho's Haar estimate (before) and of estimate_sigma (now). Needs MDRN_FAST_DATA (or the data folder) with the sets.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from noisy_photos import as_file, noisy_file  # noqa: E402

from mdrn_fast.images import load_image  # noqa: E402
from mdrn_fast.noise_level import ESTIMATOR, estimate_sigma, features, haar_sigma, predict  # noqa: E402
from mdrn_fast.paths import dataset  # noqa: E402


def blur(a: np.ndarray, std: float) -> np.ndarray:
    """Separable Gaussian blur of [H, W, C] (reflected borders)."""
    r = 3
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / std) ** 2)
    k /= k.sum()
    for axis in (0, 1):
        p = np.pad(a, [(r, r) if ax == axis else (0, 0) for ax in range(3)], mode="reflect")
        n = a.shape[axis]
        a = sum(w * np.take(p, np.arange(i, i + n), axis=axis) for i, w in enumerate(k)).astype(np.float32)
    return a


def training_noise(shape, sigma: float, clean: np.ndarray, rng) -> np.ndarray:
    """Noise of per-pixel std ``sigma`` (0-255 scale) as photos have it: white (half the samples), grain (a
    quarter: white noise in 2x2 clumps or blurred, rescaled to std sigma) or signal-dependent (a quarter:
    std proportional to the square root of the brightness, as shot noise, sigma on average)."""
    kind = rng.random()
    n = rng.standard_normal(shape).astype(np.float32)
    if 0.5 <= kind < 0.75:
        if rng.random() < 0.5:
            n = np.kron(rng.standard_normal(((shape[0] + 1) // 2, (shape[1] + 1) // 2, shape[2])),
                        np.ones((2, 2, 1)))[: shape[0], : shape[1]].astype(np.float32)
        else:
            n = blur(n, float(rng.uniform(0.5, 1.2)))
        n /= n.std() + 1e-8
    elif kind >= 0.75:
        scale = np.sqrt(np.clip(clean, 0.02, 1.0))
        n *= scale / np.sqrt((scale ** 2).mean())
    return n * (sigma / 255.0)


def samples(files, channels: int, per_image: int, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    feats, sigmas, groups = [], [], []
    for i, path in enumerate(files):
        clean = load_image(path, channels=channels).pixels
        for _ in range(per_image):
            sigma = float(rng.uniform(0, 60))
            fmt = "png" if rng.random() < 1 / 3 else f"q{int(rng.integers(50, 99))}"
            noisy, quality = as_file(clean + training_noise(clean.shape, sigma, clean, rng), fmt)
            feats.append(features(noisy, quality))
            sigmas.append(sigma)
            groups.append(i)
    return np.stack(feats), np.array(sigmas, np.float32), np.array(groups)


def fit(f: np.ndarray, s: np.ndarray, steps: int = 6000, hidden: int = 48, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    mean, std = f.mean(0), f.std(0) + 1e-6
    x, y = torch.from_numpy((f - mean) / std), torch.from_numpy(s)
    net = torch.nn.Sequential(torch.nn.Linear(f.shape[1], hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, hidden),
                              torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        pred = torch.nn.functional.softplus(net(x)[:, 0])
        loss = torch.nn.functional.smooth_l1_loss(pred, y)  # the table scores absolute error
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    layers = [m for m in net if isinstance(m, torch.nn.Linear)]
    out = {"mean": mean.tolist(), "std": std.tolist()}
    for i, m in enumerate(layers):
        out[f"w{i}"] = m.weight.detach().T.tolist()
        out[f"b{i}"] = m.bias.detach().tolist()
    return out


def train(args) -> None:
    rng = np.random.default_rng(0)
    t0 = time.time()
    if args.cache and Path(args.cache).exists():
        z = np.load(args.cache)
        f, s, g = z["f"], z["s"], z["g"]
    else:
        f, s, g = build(args, rng)
        if args.cache:
            np.savez(args.cache, f=f, s=s, g=g)
    print(f"{len(s)} samples in {time.time() - t0:.0f} s", flush=True)
    held = (g % 10) == 0
    net = fit(f[~held], s[~held])
    err = np.abs(predict(f[held], {k: np.asarray(v, np.float32) for k, v in net.items()}) - s[held])
    print(f"held-out training images: median abs error {np.median(err):.2f}, 90th pct {np.percentile(err, 90):.2f}")
    net = fit(f, s)
    ESTIMATOR.write_text(json.dumps({k: np.round(np.asarray(v, np.float64), 6).tolist() for k, v in net.items()}))
    print(f"wrote {ESTIMATOR}")


def build(args, rng):
    parts = [samples(dataset("Train400", args.data)[: args.limit], 1, args.per_image, rng),
             samples(dataset("BSD432", args.data)[: args.limit], 1, args.per_image, rng),
             samples(dataset("BSD432", args.data)[: args.limit], 3, args.per_image, rng)]
    f = np.concatenate([p[0] for p in parts])
    s = np.concatenate([p[1] for p in parts])
    g = np.concatenate([p[2] + 1000 * k for k, p in enumerate(parts)])
    return f, s, g


def table(args) -> None:
    sigmas, fmts = (5, 15, 25, 35, 45, 55), ("png", "q90", "q75")
    print(f"| set | format | estimator | " + " | ".join(f"sigma {s}" for s in sigmas) + " |")
    print("|---|---|---|" + "---|" * len(sigmas))
    for set_name, channels in (("BSD68", 1), ("CBSD68", 3)):
        files = dataset(set_name, args.data)[: args.limit]
        cleans = [(p.name, load_image(p, channels=channels).pixels) for p in files]
        for fmt in fmts:
            errs = {"haar": {s: [] for s in sigmas}, "now": {s: [] for s in sigmas}}
            for s in sigmas:
                for name, clean in cleans:
                    noisy, quality = noisy_file(clean, name, s, fmt)
                    errs["haar"][s].append(abs(haar_sigma(noisy) - s))
                    errs["now"][s].append(abs(estimate_sigma(noisy, quality) - s))
            for which, label in (("haar", "before (Haar MAD)"), ("now", "estimate_sigma")):
                cells = " | ".join(f"{np.median(errs[which][s]):.2f}" for s in sigmas)
                print(f"| {set_name} ({len(files)}) | {'PNG' if fmt == 'png' else 'JPEG ' + fmt} | {label} | {cells} |",
                      flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["train", "table"])
    ap.add_argument("--data", help="data folder (default $MDRN_FAST_DATA)")
    ap.add_argument("--limit", type=int, help="the first N images of each set")
    ap.add_argument("--per-image", type=int, default=4, help="train: noisy versions per image")
    ap.add_argument("--cache", help="train: keep the samples' features in this .npz (a refit reads them)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    train(args) if args.what == "train" else table(args)


if __name__ == "__main__":
    main()
