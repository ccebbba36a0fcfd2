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
    parser.add_argument("--backend", default="auto", type=flags.backend, help=flags.BACKEND_HELP)
    parser.add_argument("--device", default="auto", type=flags.device, help="auto (a GPU if present), cpu or cuda")
    from .denoise import add_tiling_arguments

    add_tiling_arguments(parser)
    parser.add_argument("--limit", type=flags.positive, help="only the first N images")
    parser.add_argument("--save", help="folder for the denoised PNGs (created if missing; not the set's own)")
    parser.add_argument("--json", help="write per-image rows and the mean here")
    parser.add_argument("--overwrite", action="store_true", help="allow replacing existing --save and --json files")


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


def save_targets(save: str, files, overwrite: bool) -> dict:
    """{file: where --save writes its denoised PNG}, checked before any work: the folder can be created, it is
    not where the set's images are (their clean originals would be replaced by what is scored against them),
    and no target exists unless --overwrite. Names as `denoise` gives them (a.jpg, a.png: a_jpg.png, a_png.png)."""
    from pathlib import Path

    from mdrn_fast.errors import UsageError

    from .denoise import output_names

    folder = Path(save)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--save {save}: a file; --save names the folder for the denoised PNGs")
    if folder.is_dir() and any(Path(f).resolve().parent == folder.resolve() for f in files):
        raise UsageError(f"--save {save}: the folder of the set's own images; pick another one")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--save {save}: cannot create this folder ({e.strerror})") from None
    targets = {f: folder / name for f, name in output_names([Path(f) for f in files]).items()}
    taken = [t for t in targets.values() if t.exists()]
    if taken and not overwrite:
        raise UsageError(f"--save {save}: {taken[0].name} exists" + (f" (and {len(taken) - 1} more)" if len(taken) > 1
                         else "") + "; pass --overwrite to replace, or pick another folder")
    return targets


def check_json_target(path: str, overwrite: bool) -> None:
    """--json is checked before any work: a file in a folder that exists, not there already unless --overwrite."""
    from pathlib import Path

    from mdrn_fast.errors import UsageError

    target = Path(path)
    if target.is_dir():
        raise UsageError(f"--json {path}: a folder; --json names the report file")
    if not target.parent.is_dir():
        raise UsageError(f"--json {path}: the folder {target.parent} does not exist")
    if target.exists() and not overwrite:
        raise UsageError(f"--json {path} exists (pass --overwrite to replace it)")


def run(args) -> int:
    from pathlib import Path

    from mdrn_fast.atomic import write_atomically
    from mdrn_fast.errors import check_backend_on, resolve_device
    from mdrn_fast.evaluate import evaluate, summary, table
    from mdrn_fast.paths import dataset

    device = resolve_device(args.device)
    check_backend_on(args.backend, device)
    files = dataset(args.set, args.data)[: args.limit]
    if args.json:
        check_json_target(args.json, args.overwrite)
    targets = save_targets(args.save, files, args.overwrite) if args.save else None
    color = set_is_color(files) if args.color is None else args.color
    model = load_model(args, color=color).to(device)
    rows = evaluate(model, files, args.sigma, device=str(device), save_to=targets, overwrite=args.overwrite,
                    tiling=dict(tile=args.tile, overlap=args.overlap, memory=args.memory, mode=args.tiling))
    print(table(rows, f"{Path(args.set).name} ({'color' if color else 'gray'}), sigma {args.sigma:g}, "
                      f"{args.weights or args.model}"))
    if args.json:
        report = {"rows": [r.__dict__ for r in rows], "mean": summary(rows), "sigma": args.sigma, "set": args.set,
                  "color": color}
        text = json.dumps(_no_nan(report), indent=1)  # null, not NaN, for unscored SSIM
        write_atomically(args.json, lambda tmp: Path(tmp).write_text(text), overwrite=True)
    return 0


def _no_nan(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_nan(v) for v in value]
    return value
