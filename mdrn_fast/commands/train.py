"""mdrn-fast train: train MDRN on image folders with AWGN (flags, or --config FILE with the same keys)."""
from __future__ import annotations

import json
from dataclasses import fields

HELP = "train MDRN with L1 on AWGN patches (CPU or GPU, AMP, torchrun for DDP, --resume)"


def add_training_arguments(parser) -> None:
    """The flags of TrainConfig, shared with `mdrn-fast distill`."""
    from mdrn_fast import flags
    from mdrn_fast.train import HELP, SETTINGS, TrainConfig

    parser.add_argument("--config", type=flags.existing_file,
                        help="JSON file whose keys are these flags' names (flags given also win)")
    parser.add_argument("--resume", metavar="CHECKPOINT",
                        help="continue a run: its checkpoint.pt (or its folder); the run's settings are reused, "
                             "flags given again override them")
    parser.add_argument("--overwrite", action="store_true", help="start over in an --out that holds a run")
    for f in fields(TrainConfig):
        if f.name == "overrides":
            parser.add_argument("--overrides", type=json_object, default=None, help=HELP["overrides"])
        elif f.type in (bool, "bool"):
            parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, action="store_true", default=None,
                                help=HELP[f.name])
        else:
            kind = flags.existing_file if f.name == "init" else SETTINGS.get(f.name, str)
            options = getattr(kind, "options", None)
            parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=kind, default=None,
                                metavar="{" + ",".join(options) + "}" if options else None,
                                help=HELP[f.name] if f.default is None else f"{HELP[f.name]} (default: {f.default})")


def json_object(text: str) -> dict:
    import argparse

    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f'expected a JSON object such as \'{{"channels": 8}}\', got {text!r}')
    return value


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
    if not path.is_file():
        raise UsageError(f"--resume {args.resume}: not a regular file (a FIFO, socket or device)")
    if path.suffix == ".safetensors":
        raise UsageError(f"--resume {args.resume}: a weights file, not a checkpoint; start a run from it with "
                         f"--init {args.resume}")
    return str(path)


MODEL_SETTINGS = ("preset", "color", "overrides")  # what fixes the network's shape: a resumed run keeps them


def check_same_model(resume: str, saved: dict, given: dict) -> None:
    """A flag that would change a resumed run's network is refused in one line naming it."""
    from mdrn_fast.errors import UsageError

    for key in MODEL_SETTINGS:
        if key in given and key in saved and given[key] != saved[key]:
            raise UsageError(f"--resume {resume}: the run was trained with --{key} {json.dumps(saved[key])}, "
                             f"not {json.dumps(given[key])}; a resumed run keeps its network (drop --{key}, or "
                             "start a new run with another --out)")


def resumed_checkpoint(args) -> dict | None:
    """The training checkpoint --resume names, read once for the command (None without --resume)."""
    from mdrn_fast.checkpoint import load_training_checkpoint

    checkpoint = resume_path(args)
    return load_training_checkpoint(checkpoint) if checkpoint else None


def config_from_args(args, state: dict | None):
    """The run's settings: a resumed run's own (``state``: resumed_checkpoint), then --config's, then the flags
    given (each one that changes a resumed run's setting is said)."""
    from mdrn_fast.errors import UsageError
    from mdrn_fast.train import TrainConfig, check_settings

    names = {f.name for f in fields(TrainConfig)}
    values, saved, from_file = {}, {}, {}
    checkpoint = resume_path(args)
    if checkpoint:
        from pathlib import Path

        saved = json.loads(state["config"])
        values = {k: v for k, v in saved.items() if k in names}
        values["out"] = str(Path(checkpoint).parent)  # the run's folder, wherever it is now
    if args.config:
        try:
            with open(args.config) as fh:
                from_file = json.load(fh)
        except (OSError, ValueError) as e:
            raise UsageError(f"--config {args.config}: not a readable JSON file ({e})") from None
        if not isinstance(from_file, dict):
            raise UsageError(f"--config {args.config}: expected a JSON object of settings, such as "
                             '{"steps": 1000, "lr": 0.001}')
        unknown = set(from_file) - names
        if unknown:
            raise UsageError(f"--config {args.config}: unknown keys {sorted(unknown)}; the keys are {sorted(names)}")
        values.update(from_file)
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name) is not None}
    if checkpoint:
        check_same_model(args.resume, saved, from_file | given)
    for k, v in given.items():
        if k in saved and saved[k] != v:
            print(f"resume: --{k.replace('_', '-')} {v} overrides the run's {saved[k]}")
    values.update(given)
    return check_settings(TrainConfig(**values))


def add_arguments(parser) -> None:
    add_training_arguments(parser)


def run(args) -> int:
    return train_and_report(config_from_args(args, resumed_checkpoint(args)), "mdrn-fast train",
                            resume=resume_path(args), overwrite=args.overwrite)


def train_and_report(cfg, command: str, **kwargs) -> int:
    """Run the training (mdrn_fast.train.run) and say its outcome: the weights, or after SIGINT/SIGTERM the
    command that continues the run (exit 130/143), or the step where it diverged (exit 1)."""
    import shlex
    import sys

    from mdrn_fast.train import Diverged, Interrupted, run as train

    try:
        result = train(cfg, **kwargs)
    except Interrupted as e:
        print(f"\n{command.split()[1]}: {e.signal_name}: stopped after step {e.step} of {cfg.steps}, checkpoint "
              f"written; continue with: {command} --resume {shlex.quote(str(e.checkpoint.parent))}", file=sys.stderr)
        return 130 if e.signal_name == "SIGINT" else 143
    except Diverged as e:
        print(f"mdrn-fast {command.split()[1]}: error: {e}", file=sys.stderr)
        return 1
    if result["weights"]:
        print(f"weights: {result['weights']}" + (f" (validation PSNR {result['val_psnr']:.2f} dB)"
                                                 if result["val_psnr"] is not None else ""))
    return 0
