"""mdrn-fast distill: train a student with HMDS from a frozen teacher (strategy A or D), then export it."""
from __future__ import annotations

HELP = "HMDS distillation: train a student (--preset) from a teacher weight file (--teacher), strategy A or D"


def add_arguments(parser) -> None:
    from mdrn_fast import flags

    from .train import add_training_arguments

    add_training_arguments(parser)
    parser.add_argument("--teacher", required=True, type=flags.existing_file,
                        help="teacher weight file (mdrn-fast train's model.safetensors)")
    # defaults applied in run(), after a resumed run's own settings: None here means "not given"
    parser.add_argument("--strategy", type=flags.choice("A", "D"),
                        help="A: heterogeneous architecture, same input; D: teacher trained at lower noise, "
                             "fed the clean image with its own noise (default: A)")
    parser.add_argument("--loss", type=flags.choice("l1", "l2", "at", "fakd"), help="default: fakd for A, l1 for D")
    parser.add_argument("--weight", type=flags.number(0), help="lambda, the weight of the feature loss (default: 1.0)")
    parser.add_argument("--sigma-teacher", type=flags.sigma,
                        help="strategy D: the teacher's noise level (default: 15.0)")


DEFAULTS = dict(strategy="A", loss=None, weight=1.0, sigma_teacher=15.0)  # loss None: the strategy's own


def objective_settings(args, state: dict | None) -> dict:
    """The HMDS settings: a resumed run's own (kept in its checkpoint, ``state``), else the flags, else DEFAULTS.
    A flag that would change a resumed run's objective is refused in one line naming it."""
    import json

    from mdrn_fast.errors import UsageError

    saved = json.loads(state.get("objective_settings", "{}")) if state else {}
    given = {k: getattr(args, k) for k in DEFAULTS if getattr(args, k) is not None}
    for k, v in given.items():
        if k in saved and saved[k] != v:
            flag = "--" + k.replace("_", "-")
            raise UsageError(f"--resume {args.resume}: the run was distilled with {flag} {saved[k]}, not {v}; a "
                             f"resumed run keeps its objective (drop {flag}, or start a new run with --out)")
    return DEFAULTS | {k: v for k, v in saved.items() if k in DEFAULTS} | given


def run(args) -> int:
    import shlex

    from mdrn_fast.distill import HMDS
    from mdrn_fast.errors import UsageError
    from mdrn_fast.train import build_model
    from mdrn_fast.weights_file import load_weights

    from .train import config_from_args, resume_path, resumed_checkpoint, train_and_report

    state = resumed_checkpoint(args)
    cfg = config_from_args(args, state)
    settings = objective_settings(args, state)
    teacher, meta = load_weights(args.teacher, backend=cfg.backend)
    student = build_model(cfg, load_init=not args.resume)
    if teacher.in_channels != student.in_channels:
        raise UsageError(f"--teacher has {teacher.in_channels} input channels, the student {student.in_channels}")
    objective = HMDS(student, teacher, backend=cfg.backend, **settings)
    settings["loss"] = objective.loss_kind  # the strategy's default resolved: a resumed run keeps it
    print(f"HMDS-{settings['strategy']}: student {cfg.preset} (B={student.blocks}) <- teacher "
          f"{meta.get('preset', '?')} (B={teacher.blocks}), pairs {objective.pairs}, loss {objective.loss_kind}, "
          f"weight {settings['weight']}")
    command = f"mdrn-fast distill --teacher {shlex.quote(args.teacher)} " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in settings.items())
    return train_and_report(cfg, command, objective=objective, resume=resume_path(args), overwrite=args.overwrite,
                            objective_settings=settings)
