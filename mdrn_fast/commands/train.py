"""mdrn-fast train: train MDRN on image folders with AWGN (flags, or --config FILE with the same keys)."""
from __future__ import annotations

import json
from dataclasses import fields

HELP = "train MDRN with L1 on AWGN patches (CPU or GPU, AMP, torchrun for DDP, --resume)"


def add_training_arguments(parser) -> None:
    """The flags of TrainConfig, shared with `mdrn-fast distill`."""
    from mdrn_fast.train import TrainConfig

    parser.add_argument("--config", help="JSON file whose keys are these flags' names (flags given also win)")
    parser.add_argument("--resume", help="checkpoint to continue from (its step, optimizer and schedule)")
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


def config_from_args(args):
    from mdrn_fast.train import TrainConfig

    values = {}
    if args.config:
        with open(args.config) as fh:
            values = json.load(fh)
        unknown = set(values) - {f.name for f in fields(TrainConfig)}
        if unknown:
            raise SystemExit(f"{args.config}: unknown keys {sorted(unknown)}")
    values.update({f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name) is not None})
    return TrainConfig(**values)


def add_arguments(parser) -> None:
    add_training_arguments(parser)


def run(args) -> int:
    from mdrn_fast.train import run as train

    result = train(config_from_args(args), resume=args.resume)
    if result["weights"]:
        print(f"weights: {result['weights']}" + (f" (validation PSNR {result['val_psnr']:.2f} dB)"
                                                 if result["val_psnr"] is not None else ""))
    return 0
