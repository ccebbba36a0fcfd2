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
          ("--overlap", "3", "multiple of 4"), ("--memory", "10", "at least 1M"), ("--memory", "inf", "a size such as"),
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
            ("--overrides", "{{bad json", "a JSON object"), ("--overrides", '{{"channels": 100000}}', "from 1 to 256"), ("--init", "{tmp}/none.safetensors", "no such file"),
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
    (["train", "--resume", "{tmp}/w.safetensors"], "a weights file, not a checkpoint; start a run from it with --init"),
    (EVAL + ["--save", "{imgs}"], "the folder of the set's own images"),
    (EVAL + ["--save", "{photo}"], "a file; --save names the folder"),
    (EVAL + ["--json", "{tmp}/nowhere/x.json"], "does not exist"),
    (EVAL + ["--json", "{imgs}"], "a folder; --json names the report file"),
    (["demo", "-o", "{photo}"], "exists (pass --overwrite to replace it)"),
])
def test_other_usage_mistakes_are_one_line(argv, words, where, tmp_path, capsys):
    (tmp_path / "w.safetensors").write_bytes(b"")
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    code = main([a.format(**where) for a in argv])
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before, "nothing is written or replaced"
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


def test_every_flag_has_a_help_text():
    """`mdrn-fast COMMAND --help` explains every flag (README: "every flag with its default")."""
    import argparse

    from mdrn_fast.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = [f"{name} {action.option_strings[-1]}" for name, sub in commands.choices.items()
               for action in sub._actions if action.option_strings and not action.help]
    assert not missing, missing


def test_output_folder_that_cannot_be_created_is_one_line(where, capsys):
    assert main(["denoise", where["photo"], "-o", "/proc/mdrn-fast-test/out", "--backend", "torch"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "-o /proc/mdrn-fast-test/out: cannot create this folder" in err, err
    assert "[Errno" not in err


def test_eval_save_never_replaces_a_file_unless_asked(where, tmp_path, capsys):
    """eval --save writes each image's PNG once: a second run is refused before any work, --overwrite replaces."""
    argv = [a.format(**where) for a in EVAL + ["--weights", "{tmp}/t.safetensors", "--save", "{tmp}/saved"]]
    from mdrn_fast.models import MDRN
    from mdrn_fast.weights_file import save_weights

    save_weights(tmp_path / "t.safetensors", MDRN(channels=4, blocks=1, backend="torch"), preset="t")
    assert main(argv) == 0
    saved = sorted(p.name for p in (tmp_path / "saved").iterdir())
    assert saved == ["0.png", "1.png"], saved
    capsys.readouterr()
    assert main(argv) == 2
    assert "0.png exists (and 1 more); pass --overwrite" in capsys.readouterr().err
    assert main(argv + ["--overwrite"]) == 0


def _checkpoint(tmp_path, content):
    import torch

    path = tmp_path / "c.pt"
    torch.save(content, path)
    return str(path)


@pytest.mark.parametrize("content, words", [
    ("tensor", "not a training checkpoint of mdrn-fast (it holds a Tensor)"),
    ({"step": 1}, "objective, optimizer, scheduler, config missing or malformed"),
    ("config", "config missing or malformed"),
])
def test_a_file_that_is_not_a_training_checkpoint_is_one_line(content, words, where, tmp_path, capsys):
    import torch

    if content == "tensor":
        content = torch.zeros(3)
    elif content == "config":
        content = {"objective": {}, "optimizer": {}, "scheduler": {}, "step": 1, "config": "[1]"}
    path = _checkpoint(tmp_path, content)
    assert main(["train", "--resume", path]) in (1, 2)
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1 and words in err, err


def test_a_resumed_run_does_not_replace_another_run(where, tmp_path, capsys):
    """--resume A --out B, where B holds a run of its own: refused (B would be overwritten), nothing written."""
    common = [a.format(**where) for a in TRAIN[:-4]] + ["--steps", "1", "--patch", "16", "--batch", "1",
                                                         "--workers", "0", "--backend", "torch", "--preset",
                                                         "mdrn-tiny", "--val-images", "0"]
    assert main(common + ["--out", str(tmp_path / "a")]) == 0
    assert main(common + ["--out", str(tmp_path / "b")]) == 0
    before = (tmp_path / "b" / "checkpoint.pt").read_bytes()
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "a"), "--steps", "2", "--out", str(tmp_path / "b")]) == 2
    assert "already holds another run" in capsys.readouterr().err
    assert (tmp_path / "b" / "checkpoint.pt").read_bytes() == before


def test_config_switches_must_be_json_booleans(where, tmp_path, capsys):
    """{"color": "false"} would be truthy (a color model): refused, naming the setting."""
    (tmp_path / "cfg.json").write_text('{"color": "false"}')
    assert main([a.format(**where) for a in TRAIN] + ["--config", str(tmp_path / "cfg.json")]) == 2
    err = capsys.readouterr().err
    assert '--color "false": expected true or false' in err, err


def test_a_bad_validation_image_stops_the_run_before_its_first_step(where, tmp_path, capsys):
    (tmp_path / "val").mkdir()
    (tmp_path / "val" / "x.png").write_bytes(b"not an image")
    argv = [a.format(**where) for a in TRAIN] + ["--val-set", str(tmp_path / "val"), "--val-images", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--val-set" in err and "x.png" in err, err
    assert not (tmp_path / "run").exists()
