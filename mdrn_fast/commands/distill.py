"""mdrn-fast distill: train a student with HMDS from a frozen teacher (strategy A or D), then export it."""
from __future__ import annotations

HELP = "HMDS distillation: train a student (--preset) from a teacher weight file (--teacher), strategy A or D"


def add_arguments(parser) -> None:
    from mdrn_fast import flags

    from .train import add_training_arguments

    add_training_arguments(parser)
    parser.add_argument("--teacher", required=True, type=flags.existing_file,
                        help="teacher weight file (mdrn-fast train's model.safetensors)")
    parser.add_argument("--strategy", type=flags.choice("A", "D"), default="A",
                        help="A: heterogeneous architecture, same input; D: teacher trained at lower noise, "
                             "fed the clean image with its own noise")
    parser.add_argument("--loss", type=flags.choice("l1", "l2", "at", "fakd"), help="default: fakd for A, l1 for D")
    parser.add_argument("--weight", type=flags.number(0), default=1.0, help="lambda, the weight of the feature loss")
    parser.add_argument("--sigma-teacher", type=flags.sigma, default=15.0,
                        help="strategy D: the teacher's noise level")


def run(args) -> int:
    import shlex

    from mdrn_fast.distill import HMDS
    from mdrn_fast.errors import UsageError
    from mdrn_fast.train import build_model
    from mdrn_fast.weights_file import load_weights

    from .train import config_from_args, resume_path, train_and_report

    cfg = config_from_args(args)
    teacher, meta = load_weights(args.teacher, backend=cfg.backend)
    student = build_model(cfg, load_init=not args.resume)
    if teacher.in_channels != student.in_channels:
        raise UsageError(f"--teacher has {teacher.in_channels} input channels, the student {student.in_channels}")
    objective = HMDS(student, teacher, strategy=args.strategy, loss=args.loss, weight=args.weight,
                     sigma_teacher=args.sigma_teacher, backend=cfg.backend)
    print(f"HMDS-{args.strategy}: student {cfg.preset} (B={student.blocks}) <- teacher {meta.get('preset', '?')} "
          f"(B={teacher.blocks}), pairs {objective.pairs}, loss {objective.loss_kind}, weight {args.weight}")
    command = f"mdrn-fast distill --teacher {shlex.quote(args.teacher)}"
    return train_and_report(cfg, command, objective=objective, resume=resume_path(args), overwrite=args.overwrite)
