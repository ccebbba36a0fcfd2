"""mdrn-fast denoise: denoise image files or folders; bad files are reported and skipped, exit 1 at the end."""
from __future__ import annotations

import sys
from pathlib import Path

HELP = "denoise image files or folders into -o OUT (8/16-bit PNG, gray or color, --tile for large images)"


def add_arguments(parser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="IN", help="image files or folders")
    parser.add_argument("-o", "--out", required=True, help="output folder")
    parser.add_argument("--sigma", type=int, default=25, help="noise level of the shipped weights to use")
    parser.add_argument("--model", default="mdrn-base")
    parser.add_argument("--weights", help="a weight file instead of the shipped ones")
    parser.add_argument("--tile", type=int, help="tile size (multiple of 4)")
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--overwrite", action="store_true", help="allow writing over existing files (inputs too)")


def _files(inputs) -> list[Path]:
    from mdrn_fast.paths import image_files

    out = []
    for item in map(Path, inputs):
        out += image_files(item) if item.is_dir() else [item]
    return out


def run(args) -> int:
    import numpy as np

    from mdrn_fast.images import ImageError, load_image, save_image
    from mdrn_fast.inference import denoise
    from mdrn_fast.catalog import pretrained
    from mdrn_fast.weights_file import load_weights

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    models = {}

    def model_for(color: bool):
        if color not in models:
            if args.weights:
                m = load_weights(args.weights, backend=args.backend)[0]
                if m.in_channels != (3 if color else 1):
                    raise ImageError(f"the weights are for {'color' if m.in_channels == 3 else 'gray'} images")
            else:
                m = pretrained(args.model, sigma=args.sigma, color=color, backend=args.backend)
            models[color] = m.to(args.device)
        return models[color]

    failed, files = [], _files(args.inputs)
    for path in files:
        target = out_dir / (path.stem + ".png")
        try:
            if target.exists() and not args.overwrite:
                raise ImageError(f"{target} exists (pass --overwrite to replace it)")
            image = load_image(path)
            color = image.pixels.shape[2] == 3
            result = denoise(image.pixels, model_for(color), tile=args.tile, overlap=args.overlap)
            save_image(target, np.clip(result, 0, 1), bits=image.bits)
            print(f"{path} -> {target}")
        except (ImageError, FileNotFoundError, ValueError) as e:
            failed.append(path)
            print(f"error: {e}", file=sys.stderr)
    if failed:
        print(f"{len(failed)} of {len(files)} file(s) failed: "
              + ", ".join(p.name for p in failed), file=sys.stderr)
        return 1
    return 0
