"""The ``mdrn-fast`` command line: one subcommand per module in ``mdrn_fast.commands``.

Each such module has ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``. A user's mistake
ends in one line and exit code 2, any other failure in one line and exit code 1 (`--debug`: the traceback).
"""
from __future__ import annotations

import argparse
import errno
import importlib
import os
import pkgutil
import sys

from . import commands


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .flags import Parser

    parser = Parser(prog="mdrn-fast", description="Fast MDRN denoising and HMDS distillation.")
    parser.add_argument("--version", action="version", version=f"mdrn-fast {__version__}")
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

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help, --version (0) or a flag refused when parsed (2, its line already printed)
        return e.code if isinstance(e.code, int) else 2
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
        if isinstance(e, OSError) and e.errno is not None and e.strerror:  # not the raw "[Errno 2] ..."
            text = (f"{e.filename}: " if e.filename else "") + e.strerror
            if e.errno == errno.ENOSPC and e.strerror == os.strerror(errno.ENOSPC):
                text += " (the disk is full: free some space, then run the command again)"
        print(f"mdrn-fast {args.command}: error: {text}", file=sys.stderr)
        if not usage and not isinstance(e, (ValueError, KeyError, OSError)):
            print(f"mdrn-fast {args.command}: ({type(e).__name__}; run again with --debug for the traceback)",
                  file=sys.stderr)
        return 2 if usage else 1


if __name__ == "__main__":
    sys.exit(main())
