"""The ``mdrn-fast`` command line: one subcommand per module in ``mdrn_fast.commands``.

Each such module has ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``. A user's mistake
ends in one line and exit code 2, any other failure in one line and exit code 1 (`--debug`: the traceback).
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from . import commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mdrn-fast", description="Fast MDRN denoising and HMDS distillation.")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for m in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{m.name}")
        p = sub.add_parser(m.name, help=module.HELP, description=module.HELP)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .errors import USAGE_ERRORS

    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print(f"mdrn-fast {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - every failure ends in one line unless --debug
        if args.debug:
            raise
        usage = isinstance(e, USAGE_ERRORS)
        text = str(e).strip() or type(e).__name__
        if isinstance(e, KeyError) and e.args:
            text = str(e.args[0])
        print(f"mdrn-fast {args.command}: error: {text}", file=sys.stderr)
        if not usage and not isinstance(e, (ValueError, KeyError, OSError)):
            print(f"mdrn-fast {args.command}: ({type(e).__name__}; run again with --debug for the traceback)",
                  file=sys.stderr)
        return 2 if usage else 1


if __name__ == "__main__":
    sys.exit(main())
