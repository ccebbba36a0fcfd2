"""mdrn-fast eval: PSNR/SSIM on a test set at one noise level, by the evaluation protocol of docs/DESIGN.md."""
from __future__ import annotations

import json
import math

HELP = "PSNR/SSIM table on Set12, BSD68, CBSD68 or a folder of images (the protocol of docs/DESIGN.md, section 6)"


def add_arguments(parser) -> None:
    from mdrn_fast import flags

    parser.add_argument("--set", default="BSD68", help="Set12, BSD68, CBSD68 or a folder of images")
    parser.add_argument("--sigma", type=flags.sigma, default=25.0, help="the noise level added, on the 0-255 scale")
    parser.add_argument("--weights", type=flags.existing_file,
                        help="a weight file (default: the shipped weights for --model and --sigma)")
    parser.add_argument("--model", default="mdrn-base", type=flags.shipped_model, help="which shipped weights")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--color", dest="color", action="store_true", default=None,
                      help="score in RGB (default: color when the set's images are)")
    kind.add_argument("--gray", dest="color", action="store_false", help="score in gray (color images converted)")
    parser.add_argument("--data", help="data folder (default $MDRN_FAST_DATA, else ~/.cache/mdrn_fast/data)")
    parser.add_argument("--backend", default="auto", type=flags.backend)
    parser.add_argument("--device", default="auto", type=flags.device, help="auto (a GPU if present), cpu or cuda")
    from .denoise import add_tiling_arguments

    add_tiling_arguments(parser)
    parser.add_argument("--limit", type=flags.positive, help="only the first N images")
    parser.add_argument("--save", help="folder for the denoised PNGs")
    parser.add_argument("--json", help="write per-image rows and the mean here")


def set_is_color(files) -> bool:
    """Whether the images are in color: the first one decides (the standard sets are all one kind)."""
    from mdrn_fast.images import load_image

    return load_image(files[0]).color


def load_model(args, color: bool):
    from mdrn_fast.errors import UsageError
    from mdrn_fast.weights_file import load_weights

    if args.weights:
        model = load_weights(args.weights, backend=args.backend)[0]
        if model.in_channels != (3 if color else 1):
            raise UsageError(f"--weights {args.weights} is a {'color' if model.in_channels == 3 else 'gray'} model "
                             f"and the images are scored in {'color' if color else 'gray'} "
                             f"(pass --{'color' if model.in_channels == 3 else 'gray'} to score them so)")
        return model
    from mdrn_fast.model_choice import load_chosen

    return load_chosen(args.model, args.sigma, color, args.backend)


def run(args) -> int:
    from pathlib import Path

    from mdrn_fast.errors import check_backend_on, resolve_device
    from mdrn_fast.evaluate import evaluate, summary, table
    from mdrn_fast.paths import dataset

    device = resolve_device(args.device)
    check_backend_on(args.backend, device)
    files = dataset(args.set, args.data)[: args.limit]
    color = set_is_color(files) if args.color is None else args.color
    model = load_model(args, color=color).to(device)
    if args.save:
        Path(args.save).mkdir(parents=True, exist_ok=True)
    rows = evaluate(model, files, args.sigma, device=str(device), save_dir=args.save,
                    tiling=dict(tile=args.tile, overlap=args.overlap, memory=args.memory, mode=args.tiling))
    print(table(rows, f"{Path(args.set).name} ({'color' if color else 'gray'}), sigma {args.sigma:g}, "
                      f"{args.weights or args.model}"))
    if args.json:
        report = {"rows": [r.__dict__ for r in rows], "mean": summary(rows), "sigma": args.sigma, "set": args.set,
                  "color": color}
        Path(args.json).write_text(json.dumps(_no_nan(report), indent=1))  # null, not NaN, for unscored SSIM
    return 0


def _no_nan(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_nan(v) for v in value]
    return value
