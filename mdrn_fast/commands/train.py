"""mdrn-fast train: train MDRN on image folders with AWGN (flags, or --config FILE with the same keys)."""
from __future__ import annotations

import json
from dataclasses import fields

HELP = "train MDRN with L1 on AWGN patches (CPU or GPU, AMP, torchrun for DDP, --resume)"


def add_training_arguments(parser) -> None:
    """The flags of TrainConfig, shared with `mdrn-fast distill`."""
    from mdrn_fast.train import TrainConfig

    parser.add_argument("--config", help="JSON file whose keys are these flags' names (flags given also win)")
    parser.add_argument("--resume", metavar="CHECKPOINT",
                        help="continue a run: its checkpoint.pt (or its folder); the run's settings are reused, "
                             "flags given again override them")
    parser.add_argument("--overwrite", action="store_true", help="start over in an --out that holds a run")
    for f in fields(TrainConfig):
        if f.name == "overrides":
            parser.add_argument("--overrides", type=json.loads, default=None,
                                help='extra MDRN arguments as JSON, e.g. \'{"channels": 8, "blocks": 2}\'')
        elif f.type in (bool, "bool"):
            parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, action="store_true", default=None)
        else:
            kind = {"int": int, "float": float}.get(str(f.type), str)
            parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=kind, default=None,
                                help=f"default: {f.default}")


def resume_path(args) -> str | None:
    """--resume as a checkpoint file (a run folder names its checkpoint.pt)."""
    from pathlib import Path

    from mdrn_fast.errors import UsageError

    if not args.resume:
        return None
    path = Path(args.resume)
    path = path / "checkpoint.pt" if path.is_dir() else path
    if not path.exists():
        raise UsageError(f"--resume {args.resume}: no checkpoint there")
    return str(path)


def config_from_args(args):
    """The run's settings: a resumed run's own, then --config's, then the flags given (each one that changes a
    resumed run's setting is said)."""
    from mdrn_fast.checkpoint import load_checkpoint
    from mdrn_fast.errors import UsageError
    from mdrn_fast.train import TrainConfig

    names = {f.name for f in fields(TrainConfig)}
    values, saved = {}, {}
    checkpoint = resume_path(args)
    if checkpoint:
        from pathlib import Path

        saved = json.loads(load_checkpoint(checkpoint).get("config", "{}"))
        values = {k: v for k, v in saved.items() if k in names}
        values["out"] = str(Path(checkpoint).parent)  # the run's folder, wherever it is now
    if args.config:
        try:
            with open(args.config) as fh:
                from_file = json.load(fh)
        except (OSError, ValueError) as e:
            raise UsageError(f"--config {args.config}: not a readable JSON file ({e})") from None
        unknown = set(from_file) - names
        if unknown:
            raise UsageError(f"--config {args.config}: unknown keys {sorted(unknown)}; the keys are {sorted(names)}")
        values.update(from_file)
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name) is not None}
    for k, v in given.items():
        if k in saved and saved[k] != v:
            print(f"resume: --{k.replace('_', '-')} {v} overrides the run's {saved[k]}")
    values.update(given)
    return TrainConfig(**values)


def add_arguments(parser) -> None:
    add_training_arguments(parser)


def run(args) -> int:
    from mdrn_fast.train import run as train

    result = train(config_from_args(args), resume=resume_path(args), overwrite=args.overwrite)
    if result["weights"]:
        print(f"weights: {result['weights']}" + (f" (validation PSNR {result['val_psnr']:.2f} dB)"
                                                 if result["val_psnr"] is not None else ""))
    return 0
