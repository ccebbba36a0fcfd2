"""Usage mistakes are refused before any work: each bad flag value below, through every subcommand that takes
the flag, exits with 2 and one line on stderr that names the flag, with no traceback and nothing written."""
import os

import numpy as np
import pytest
from PIL import Image

from helpers import random_gray_pngs
from mdrn_fast.cli import main

# (subcommand and its other arguments, the bad flag and value, words of the message)
DENOISE = ["denoise", "{photo}", "-o", "{tmp}/out"]
EVAL = ["eval", "--set", "{imgs}"]
TRAIN = ["train", "--train-set", "{imgs}", "--val-images", "0", "--out", "{tmp}/run", "--workers", "0"]
DISTILL = ["distill", "--teacher", "{photo}", "--train-set", "{imgs}", "--val-images", "0", "--out", "{tmp}/run"]
DEMO = ["demo", "-o", "{tmp}/strip.png"]
TILING = [("--tile", "7", "positive multiple of 4"), ("--tile", "0", "positive multiple of 4"),
          ("--tile", "-8", "positive multiple of 4"), ("--overlap", "-4", "multiple of 4"),
          ("--overlap", "3", "multiple of 4"), ("--memory", "10", "at least 1M"),
          ("--tiling", "smooth", "one of global, exact, local")]
MODEL = [("--model", "nope", "a shipped model: mdrn-base"), ("--weights", "{tmp}/none.safetensors", "no such file"),
         ("--backend", "fast", "one of auto, torch"), ("--sigma", "-5", "noise level"),
         ("--sigma", "500", "noise level"), ("--sigma", "abc", "noise level"), ("--sigma", "nan", "noise level")]
TRAINING = [("--preset", "nope", "one of mdrn-base"), ("--lr", "-1", "above 0"), ("--lr", "0", "above 0"),
            ("--lr", "inf", "above 0"), ("--steps", "0", "1 or more"), ("--batch", "0", "1 or more"),
            ("--batch", "two", "1 or more"), ("--amp", "fp8", "one of bf16, fp16, off"),
            ("--patch", "2", "from 8 to 1024"), ("--schedule", "linear", "cosine, multistep"),
            ("--loader", "disk", "auto, device, workers"), ("--graph", "always", "auto, on, off"), ("--workers", "-1", "0 or more"),
            ("--val-every", "0", "1 or more"), ("--ckpt-every", "0", "1 or more"), ("--log-every", "-3", "1 or more"),
            ("--seed", "-1", "0 or more"), ("--sigma", "0-500", "each from 0 to 100"),
            ("--sigma", "loud", "a noise level or a range"), ("--overrides", "[1]", "a JSON object"),
            ("--overrides", "{{bad json", "a JSON object"), ("--init", "{tmp}/none.safetensors", "no such file"),
            ("--config", "{tmp}/none.json", "no such file"), ("--device", "tpu", "auto, cpu, cuda or cuda:N")]

CASES = (
    [(DENOISE, flag, value, words) for flag, value, words in TILING + MODEL + [("--device", "gpu", "cuda:N")]]
    + [(DENOISE, "--sigma", "0", "above 0")]
    + [(EVAL, flag, value, words) for flag, value, words in TILING + MODEL + [("--limit", "0", "1 or more")]]
    + [(DEMO, flag, value, words) for flag, value, words in MODEL + [("--image", "{tmp}/none.png", "no such file")]]
    + [(TRAIN, flag, value, words) for flag, value, words in TRAINING]
    + [(DISTILL, flag, value, words) for flag, value, words in TRAINING[:8]]
    + [(DISTILL, "--teacher", "{tmp}/none.safetensors", "no such file"), (DISTILL, "--weight", "-1", "at least 0"),
       (DISTILL, "--sigma-teacher", "101", "noise level"), (DISTILL, "--strategy", "C", "one of A, D"),
       (DISTILL, "--loss", "l3", "one of l1, l2, at, fakd")]
)


@pytest.fixture
def where(tmp_path, monkeypatch):
    """A photo, a folder of images, and the current folder moved to tmp_path (so that nothing lands in the
    source tree, and anything written shows in the listing)."""
    Image.fromarray(np.full((16, 16), 128, np.uint8)).save(tmp_path / "p.png")
    random_gray_pngs(tmp_path / "imgs", 2, (24, 24))
    monkeypatch.chdir(tmp_path)
    return dict(photo=str(tmp_path / "p.png"), imgs=str(tmp_path / "imgs"), tmp=str(tmp_path))


def listing(root) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files)


def test_the_table_is_large_enough():
    assert len(CASES) >= 25 and {c[0][0] for c in CASES} == {"denoise", "eval", "train", "distill", "demo"}


@pytest.mark.parametrize("command, flag, value, words", CASES,
                         ids=[f"{c[0][0]} {c[1]} {c[2]}" for c in CASES])
def test_a_bad_flag_is_refused_in_one_line_before_any_work(command, flag, value, words, where, tmp_path, capsys):
    before = listing(tmp_path)
    argv = [a.format(**where) for a in command + [flag, value]]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert flag in err and words in err, err
    assert listing(tmp_path) == before, "nothing is written"


@pytest.mark.parametrize("argv, words", [
    (["data", "fetch", "Set13"], "unknown set(s) Set13"),
    (["data", "list", "--verify", "extra"], "unrecognized arguments: extra"),
    (["denoise", "{photo}"], "the following arguments are required: -o/--out"),
    (["train", "--resume", "{tmp}/imgs/0.png", "--preset", "mdrn-base"], "not a loadable checkpoint"),
    (TRAIN + ["--graph", "on", "--device", "cpu"], "--graph on: CUDA graphs need a CUDA device"),
    (["nonsense"], "invalid choice: 'nonsense'"),
])
def test_other_usage_mistakes_are_one_line(argv, words, where, capsys):
    code = main([a.format(**where) for a in argv])
    err = capsys.readouterr().err
    assert code in (1, 2) and "Traceback" not in err and err.count("\n") == 1, err
    assert words in err


def test_a_weights_file_that_is_not_one_stops_denoise_once(where, tmp_path, capsys):
    """--weights of a PNG: refused before the first image, not once per file."""
    assert main(["denoise", where["imgs"], "-o", str(tmp_path / "out"), "--weights", where["photo"]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--weights" in err, err
    assert not (tmp_path / "out").exists()


def test_version_and_defaults_in_help(capsys):
    from mdrn_fast import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"mdrn-fast {__version__}"
    for command, shown in [("eval", ["(default: BSD68)", "(default: 25.0)", "(default: mdrn-base)"]),
                           ("demo", ["(default: demo.png)", "(default: 25.0)"]),
                           ("denoise", ["(default: 1G)", "(default: global)"])]:
        assert main([command, "--help"]) == 0
        text = " ".join(capsys.readouterr().out.split())
        for words in shown:
            assert words in text, (command, words)


def test_output_folder_that_cannot_be_created_is_one_line(where, capsys):
    assert main(["denoise", where["photo"], "-o", "/proc/mdrn-fast-test/out", "--backend", "torch"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "-o /proc/mdrn-fast-test/out: cannot create this folder" in err, err
    assert "[Errno" not in err
