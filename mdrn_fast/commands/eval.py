"""mdrn-fast eval: PSNR/SSIM on a test set at one noise level, by the protocol of DESIGN section 6."""
from __future__ import annotations

import json

HELP = "PSNR/SSIM table on Set12, BSD68, CBSD68 or a folder (DESIGN section 6 protocol)"


def add_arguments(parser) -> None:
    parser.add_argument("--set", default="BSD68", help="Set12, BSD68, CBSD68 or a folder of images")
    parser.add_argument("--sigma", type=float, default=25)
    parser.add_argument("--weights", help="a weight file (default: the shipped weights for --model and --sigma)")
    parser.add_argument("--model", default="mdrn-base", help="preset whose shipped weights to use")
    parser.add_argument("--data", help="data root (default $MDRN_FAST_DATA or ../shared/data)")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tile", type=int, help="denoise in tiles of this size")
    parser.add_argument("--limit", type=int, help="only the first N images")
    parser.add_argument("--save", help="folder for the denoised PNGs")
    parser.add_argument("--json", help="write per-image rows and the mean here")


def load_model(args, color: bool):
    from mdrn_fast.catalog import pretrained
    from mdrn_fast.weights_file import load_weights

    if args.weights:
        return load_weights(args.weights, backend=args.backend)[0]
    return pretrained(args.model, sigma=int(args.sigma), color=color, backend=args.backend)


def run(args) -> int:
    from pathlib import Path

    from mdrn_fast.evaluate import evaluate, summary, table
    from mdrn_fast.paths import dataset

    files = dataset(args.set, args.data)[: args.limit]
    model = load_model(args, color=args.set == "CBSD68").to(args.device)
    if args.save:
        Path(args.save).mkdir(parents=True, exist_ok=True)
    rows = evaluate(model, files, args.sigma, device=args.device, tile=args.tile, save_dir=args.save)
    print(table(rows, f"{Path(args.set).name}, sigma {args.sigma:g}, {args.weights or args.model}"))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": [r.__dict__ for r in rows], "mean": summary(rows),
                                               "sigma": args.sigma, "set": args.set}, indent=1))
    return 0
