"""The command line's flag values, checked when parsed: each type below turns the text into a value or refuses
it with what is allowed, so that argparse prints one line naming the flag and exits with 2 before any file is
read or any work starts.

``Parser`` is the argparse parser of every subcommand: one-line errors, and every flag's default in --help.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

SIGMA_MAX = 100.0  # the noise levels every command accepts, on the 0-255 scale: above 0, at most SIGMA_MAX


class Parser(argparse.ArgumentParser):
    """argparse, with a mistake said in one line (the usage block is what --help is for)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class DefaultsFormatter(argparse.HelpFormatter):
    """Every flag's help ends with its default, unless it says the default itself or has none."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.default not in (None, False, argparse.SUPPRESS) and "default" not in text
                and action.option_strings and action.nargs != 0):
            text += (" " if text else "") + "(default: %(default)s)"
        return text


def _fail(text: str, allowed: str):
    raise argparse.ArgumentTypeError(f"expected {allowed}, got {text!r}")


def integer(low: int | None = None, high: int | None = None, multiple: int = 1, allowed: str = ""):
    """An int type within [low, high], a multiple of ``multiple``."""
    allowed = allowed or (f"an integer of {low} or more" if high is None else f"an integer from {low} to {high}")

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            _fail(text, allowed)
        if (low is not None and value < low) or (high is not None and value > high) or value % multiple:
            _fail(text, allowed)
        return value

    parse.__name__ = "integer"  # argparse names the type in its own messages
    return parse


def number(low: float = 0.0, high: float = math.inf, low_open: bool = False, allowed: str = ""):
    """A finite float within [low, high] (``low_open``: above low)."""
    allowed = allowed or (f"a number {'above' if low_open else 'of at least'} {low:g}" if high == math.inf
                          else f"a number from {low:g} to {high:g}")

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            _fail(text, allowed)
        if not math.isfinite(value) or value < low or (low_open and value == low) or value > high:
            _fail(text, allowed)
        return value

    parse.__name__ = "number"
    return parse


def choice(*options: str):
    """One of ``options`` (a type rather than argparse's choices, so that the message lists them once)."""
    def parse(text):
        if text not in options:
            _fail(text, "one of " + ", ".join(options))
        return text

    parse.__name__, parse.options = "choice", options  # options: for a --help metavar
    return parse


sigma = number(0, SIGMA_MAX, low_open=True,
               allowed=f"a noise level above 0, at most {SIGMA_MAX:g}, on the 0-255 scale")
tile = integer(4, multiple=4, allowed="a positive multiple of 4 (pixels)")
overlap = integer(0, multiple=4, allowed="a multiple of 4 (pixels), 0 or more")
positive = integer(1)
count = integer(0)


def sigma_or_auto(text):
    """denoise --sigma: auto (None) or a level above 0 (a clean image has nothing to denoise)."""
    if str(text).lower() == "auto":
        return None
    return number(0, SIGMA_MAX, low_open=True,
                  allowed=f"auto or a noise level above 0, at most {SIGMA_MAX:g}, on the 0-255 scale")(text)


# --backend's help, shared by every command that runs the network
BACKEND_HELP = ("the kernels that run the network: auto (the fastest usable here: cuda > triton > torch on a GPU, "
                "cpu > torch on the CPU), torch, triton, cuda or cpu")


def backend(text):
    from .registry import BACKENDS

    return choice("auto", *BACKENDS)(text)


def device(text):
    """auto, cpu, cuda or cuda:N (whether that device exists is checked before the work starts)."""
    if text in ("auto", "cpu", "cuda") or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    _fail(text, "auto, cpu, cuda or cuda:N")


def shipped_model(text):
    """--model: the name of a shipped model (the part of a weight file's name before -gray- or -color-)."""
    from .model_choice import shipped_models

    names = sorted({s.name for s in shipped_models()})
    if text not in names:
        _fail(text, "a shipped model: " + ", ".join(names) + " (other weights: --weights FILE)")
    return text


def preset(text):
    from .models.mdrn import PRESETS

    return choice(*sorted(PRESETS))(text)


def existing_file(text):
    """A path to a regular file (FIFOs and devices are refused: reading them can block forever)."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: a folder, not a file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: not a regular file (a FIFO, socket or device)")
    return text


def print_error(text: str) -> None:
    """An error line on a line of its own (after a progress bar that may have left the cursor mid-line)."""
    from tqdm import tqdm

    tqdm.write(text, file=sys.stderr)
