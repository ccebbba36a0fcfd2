"""Which shipped model denoises an image of a given noise level and color mode: the one rule behind
`mdrn-fast denoise`, `eval` and `demo`, `mdrn_fast.pretrained` and `mdrn_fast.denoise`.

For sigma (given, or estimated by mdrn_fast.noise_level) and the image's mode (gray or color), in this order:

1. a blind model of that mode (a file <name>-<gray|color>-s<lo>-<hi>.safetensors) whose range holds sigma;
2. else the per-sigma model of that mode nearest to sigma, when it is within NEAR_FRACTION (20 %) of sigma;
3. else, for color, the gray model nearest to sigma (blind or per-sigma) on each channel of COLOR_FALLBACK_SPLIT
   (mdrn_fast.channel_split), when it is nearer than the nearest color model (all of CBSD68 at sigma 50: the
   color s25 model 23.46 dB, the gray s50 model on each channel 25.96; README, Photos);
4. else the nearest model of that mode, however far, said so.

Every choice other than an exact one comes with a one-line note saying what was used and why. Sigma is on the
0-255 scale, in SIGMA_RANGE everywhere (command line and Python).
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError
from .flags import SIGMA_MAX

SIGMA_RANGE = (0.0, SIGMA_MAX)  # (lo, hi]: zero noise needs no denoiser; past 100 the image is mostly noise
NEAR_FRACTION = 0.2
# the split measured better on BSDS200 (`python bench/model_choice.py split`; README, Photos)
COLOR_FALLBACK_SPLIT = "rgb"
_FILE = re.compile(r"^(?P<name>.+)-(?P<kind>gray|color)-s(?P<lo>\d+(?:\.\d+)?)(?:-(?P<hi>\d+(?:\.\d+)?))?"
                   r"\.safetensors$")


def check_sigma(value, where: str = "sigma") -> float:
    """``value`` as a float noise level in SIGMA_RANGE, else a UsageError (a ValueError) naming ``where``."""
    lo, hi = SIGMA_RANGE
    try:
        sigma = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{where} {value}: expected a number (the noise level on the 0-255 scale)") from None
    if not lo < sigma <= hi:
        raise UsageError(f"{where} {value}: expected a noise level in ({lo:g}, {hi:g}] on the 0-255 scale")
    return sigma


@dataclass(frozen=True)
class Shipped:
    """One shipped weight file, parsed from its name."""
    file: Path
    name: str
    color: bool
    lo: float
    hi: float  # == lo for a per-sigma model

    @property
    def blind(self) -> bool:
        return self.hi > self.lo

    @property
    def level(self) -> str:
        return f"s{self.lo:g}-{self.hi:g}" if self.blind else f"s{self.lo:g}"

    def distance(self, sigma: float) -> float:
        return max(self.lo - sigma, sigma - self.hi, 0.0)


def shipped_models(name: str | None = None) -> list[Shipped]:
    """The shipped files (of preset or student ``name``, or all), sorted by name."""
    from . import catalog  # read at call time: tests point catalog.WEIGHTS_DIR elsewhere

    out = []
    for p in sorted(catalog.WEIGHTS_DIR.glob("*.safetensors")):
        m = _FILE.match(p.name)
        if m and (name is None or m["name"] == name):
            lo = float(m["lo"])
            out.append(Shipped(p, m["name"], m["kind"] == "color", lo, float(m["hi"] or lo)))
    return out


def shipped_file(name: str) -> Path | None:
    """The shipped file that ``name`` names exactly (as list_pretrained() shows it, with or without
    .safetensors), else None. A path-like name is refused: shipped names resolve only inside the package."""
    if not name or any(sep in name for sep in ("/", "\\", os.sep)) or name.startswith(".") or os.path.isabs(name):
        raise UsageError(f"{name!r}: not the name of shipped weights (see mdrn_fast.list_pretrained()); a weight "
                         "file of your own loads with mdrn_fast.weights_file.load_weights(path), or --weights FILE "
                         "on the command line")
    file = name if name.endswith(".safetensors") else name + ".safetensors"
    return next((s.file for s in shipped_models() if s.file.name == file), None)


@dataclass(frozen=True)
class Choice:
    """The model for one (name, sigma, mode): a shipped file, used as is or (split) on each color channel."""
    shipped: Shipped
    sigma: float
    color: bool
    split: str | None = None  # None: the file's own mode; "rgb" / "opponent": a gray file on each channel
    note: str = ""  # why, when the choice is not an exact one

    @property
    def summary(self) -> str:
        """A few words for each file's line: "model s25", "gray model s50 on each RGB channel"."""
        blind = " (blind)" if self.shipped.blind else ""
        if self.split:
            return f"gray model {self.shipped.level}{blind} on each {self.split.upper()} channel"
        return f"model {self.shipped.level}{blind}"

    def load(self, backend: str = "auto"):
        """The model, in eval mode (a GrayOnChannels around the gray file when split)."""
        from .channel_split import GrayOnChannels
        from .weights_file import load_weights

        model = load_weights(self.shipped.file, backend=backend)[0].eval()
        return GrayOnChannels(model, self.split).eval() if self.split else model


def _nearest(entries: list[Shipped], sigma: float) -> Shipped | None:
    # ties: a blind model first, then the higher level, which removes more noise
    return min(entries, key=lambda e: (e.distance(sigma), not e.blind, -e.lo), default=None)


def _levels(entries: list[Shipped]) -> str:
    return ", ".join(e.level for e in entries) or "none"


def choose(name: str, sigma, color: bool) -> Choice:
    """The model choice (module docstring) for images of ``color`` mode with noise ``sigma``."""
    sigma = check_sigma(sigma)
    entries = shipped_models(name)
    if not entries:
        shipped = sorted({s.name for s in shipped_models()})
        raise FileNotFoundError(f"no shipped weights named {name} (shipped: {', '.join(shipped) or 'none'})")
    kind = "color" if color else "gray"
    own = [e for e in entries if e.color == color]
    gray = [e for e in entries if not e.color]
    best = _nearest(own, sigma)
    ships = f"{kind} {name} ships {_levels(own)}"
    if best is not None and best.distance(sigma) <= NEAR_FRACTION * sigma:
        if best.distance(sigma) == 0:
            return Choice(best, sigma, color)
        return Choice(best, sigma, color, note=f"no {kind} {name} model at sigma {round(sigma, 1):g}; using the "
                                                f"nearest, {best.level} (within {NEAR_FRACTION:.0%}; {ships})")
    if color:
        fallback = _nearest(gray, sigma)
        if fallback is not None and (best is None or fallback.distance(sigma) < best.distance(sigma)):
            return Choice(fallback, sigma, color, split=COLOR_FALLBACK_SPLIT,
                          note=f"no color {name} model at sigma {round(sigma, 1):g} ({ships}); using the gray "
                               f"{fallback.level} model on each {COLOR_FALLBACK_SPLIT.upper()} channel"
                               + (", nearer in noise level" if best is not None else ""))
    if best is None:
        raise FileNotFoundError(f"no {kind} {name} weights ship (shipped for {name}: "
                                f"{', '.join(e.file.name for e in entries)}); convert the image to "
                                f"{'color' if not color else 'gray'}, or pass --weights FILE")
    return Choice(best, sigma, color, note=f"no {kind} {name} model near sigma {round(sigma, 1):g}; using the "
                                            f"nearest, {best.level}, {best.distance(sigma):.3g} away ({ships})")


def say_on_stderr(note: str) -> None:
    print(f"note: {note}", file=sys.stderr)


def load_chosen(name: str, sigma, color: bool, backend: str = "auto", say=say_on_stderr):
    """The chosen model, loaded (eval mode); its note, if any, given to ``say`` (the command line's "note:"
    line on stderr by default)."""
    choice = choose(name, sigma, color)
    if choice.note and say is not None:
        say(choice.note)
    return choice.load(backend)
