"""Ordinary mistakes end in one line that names the problem and the fix: exit code 2 for a usage error, 1 for
a failure; never a traceback unless --debug asks for it."""
import numpy as np
import pytest
import torch
from PIL import Image

from mdrn_fast.checkpoint import save_checkpoint
from mdrn_fast.cli import main


@pytest.fixture
def photo(tmp_path):
    Image.fromarray(np.full((16, 16), 128, np.uint8)).save(tmp_path / "p.png")
    return str(tmp_path / "p.png")


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the messages of a machine without a GPU")
@pytest.mark.parametrize("argv, words", [
    (["denoise", "{photo}", "-o", "{tmp}/o", "--backend", "cuda"], "--backend cuda"),
    (["denoise", "{photo}", "-o", "{tmp}/o", "--device", "cuda"], "no CUDA GPU"),
    (["eval", "--set", "{tmp}", "--device", "cuda:0"], "no CUDA GPU"),
    (["train", "--train-set", "{tmp}", "--device", "cuda", "--out", "{tmp}/run"], "no CUDA GPU"),
    (["demo", "--backend", "cuda", "-o", "{tmp}/d.png"], "--backend cuda"),
    (["denoise", "{photo}", "-o", "{tmp}/o", "--device", "tpu"], "argument --device: expected auto, cpu"),
])
def test_unavailable_devices_and_backends(argv, words, photo, tmp_path, capsys):
    argv = [a.format(photo=photo, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    assert words in one_line(capsys)


def test_usage_errors(photo, tmp_path, capsys):
    (tmp_path / "file.txt").write_text("x")
    cases = [
        (["denoise", photo, "-o", str(tmp_path / "file.txt")], "a file; -o names the output folder"),
        (["eval", "--set", str(tmp_path / "nowhere")], "neither a folder nor a standard set"),
        (["eval", "--set", str(tmp_path), "--weights", str(tmp_path / "none.safetensors")],
         "none.safetensors: no such file"),
        (["eval", "--set", str(tmp_path), "--model", "mdrn-nothing"], "argument --model: expected a shipped model"),
        (["eval", "--set", str(tmp_path), "--sigma", "0"], "argument --sigma: expected a noise level above 0"),
        (["train", "--resume", str(tmp_path / "none.pt")], "no checkpoint there"),
        (["train", "--config", str(tmp_path / "file.txt")], "not a readable JSON file"),
        (["demo", "-o", str(tmp_path)], "a folder; -o names the PNG file"),
    ]
    for argv, words in cases:
        assert main(argv) == 2, argv
        assert words in one_line(capsys), argv


def test_failures_exit_1_in_one_line(tmp_path, photo, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["train", "--resume", str(bad)]) == 1
    assert "not a loadable checkpoint" in one_line(capsys)
    (tmp_path / "w.safetensors").write_bytes(b"garbage")
    assert main(["eval", "--set", str(tmp_path), "--weights", str(tmp_path / "w.safetensors")]) in (1, 2)
    assert "not a readable safetensors weight file" in capsys.readouterr().err


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(FileNotFoundError):
        main(["--debug", "eval", "--set", str(tmp_path / "nowhere")])
    with pytest.raises(FileNotFoundError):
        main(["eval", "--set", str(tmp_path / "nowhere"), "--debug"])


def test_demo_creates_the_output_folder(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path / "new" / "dir" / "strip.png")]) == 0
    assert (tmp_path / "new" / "dir" / "strip.png").stat().st_size > 1000


def test_resume_of_a_checkpoint_from_another_model_is_refused(tmp_path, capsys):
    from helpers import random_gray_pngs

    imgs = random_gray_pngs(tmp_path / "imgs", 2, (32, 32))
    save_checkpoint(tmp_path / "c.pt", {"objective": {"w": torch.ones(2)}, "optimizer": {}, "scheduler": {},
                                        "step": 1, "config": "{}"})
    assert main(["train", "--resume", str(tmp_path / "c.pt"), "--train-set", str(imgs), "--val-images", "0",
                 "--preset", "mdrn-tiny", "--steps", "2", "--workers", "0", "--patch", "16"]) == 2
    assert "does not match this run's model" in one_line(capsys)
