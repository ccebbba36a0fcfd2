"""The noise estimator behind `--sigma auto` (mdrn_fast/noise_level.py): fit it on training sets, and measure
its error on test sets.

    python bench/noise_estimator.py train            # writes mdrn_fast/noise_estimator.json
    python bench/noise_estimator.py table --limit 68 # the README table (BSD68 gray, CBSD68 color)

train: Train400 (gray) and BSD432 (gray and color; BSDS500 minus the 68 test images), each image at a few
noise levels drawn uniformly in [0, 60], saved as PNG (a third) or JPEG at a quality drawn in [50, 98]; a
tenth of the images held out to report. table: the protocol's noise (per-image seed) on the test sets at
sigma 5-55, as PNG and JPEG quality 90 / 75; median absolute error of Donoho's Haar estimate (before) and of
estimate_sigma (now). Needs MDRN_FAST_DATA (or the data folder) with the sets.
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
from noisy_photos import noisy_file  # noqa: E402

from mdrn_fast.images import load_image  # noqa: E402
from mdrn_fast.noise_level import ESTIMATOR, estimate_sigma, features, haar_sigma, predict  # noqa: E402
from mdrn_fast.paths import dataset  # noqa: E402


def samples(files, channels: int, per_image: int, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    feats, sigmas, groups = [], [], []
    for i, path in enumerate(files):
        clean = load_image(path, channels=channels).pixels
        for _ in range(per_image):
            sigma = float(rng.uniform(0, 60))
            fmt = "png" if rng.random() < 1 / 3 else f"q{int(rng.integers(50, 99))}"
            noisy, quality = noisy_file(clean, path.name, max(sigma, 1e-3), fmt, base_seed=1)
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
    parts = [samples(dataset("Train400", args.data)[: args.limit], 1, args.per_image, rng),
             samples(dataset("BSD432", args.data)[: args.limit], 1, args.per_image, rng),
             samples(dataset("BSD432", args.data)[: args.limit], 3, args.per_image, rng)]
    f = np.concatenate([p[0] for p in parts])
    s = np.concatenate([p[1] for p in parts])
    g = np.concatenate([p[2] + 1000 * k for k, p in enumerate(parts)])
    print(f"{len(s)} samples in {time.time() - t0:.0f} s", flush=True)
    held = (g % 10) == 0
    net = fit(f[~held], s[~held])
    err = np.abs(predict(f[held], {k: np.asarray(v, np.float32) for k, v in net.items()}) - s[held])
    print(f"held-out training images: median abs error {np.median(err):.2f}, 90th pct {np.percentile(err, 90):.2f}")
    net = fit(f, s)
    ESTIMATOR.write_text(json.dumps({k: np.round(np.asarray(v, np.float64), 6).tolist() for k, v in net.items()}))
    print(f"wrote {ESTIMATOR}")


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
    args = ap.parse_args()
    torch.set_num_threads(1)
    train(args) if args.what == "train" else table(args)


if __name__ == "__main__":
    main()
