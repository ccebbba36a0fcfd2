"""`mdrn-fast denoise` on real files: kinds of PNG, bad files, no overwriting; images.load_image errors."""
import numpy as np
import pytest
import torch
from PIL import Image

from mdrn_fast import MDRN
from mdrn_fast.cli import main
from mdrn_fast.images import ImageError, load_image, save_image
from mdrn_fast.weights_file import save_weights


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(0)
    return str(save_weights(tmp_path / "w.safetensors", MDRN(channels=8, blocks=2), preset="test", sigma=25))


@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (30, 41)).astype(np.uint8)).save(folder / "gray8.png")
    Image.fromarray(rng.integers(0, 65536, (22, 27)).astype(np.uint16)).save(folder / "gray16.png")
    Image.fromarray(rng.integers(0, 256, (20, 20)).astype(np.uint8)).convert("P").save(folder / "palette.png")
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.png").write_text("not an image")
    good = (folder / "gray8.png").read_bytes()
    (folder / "truncated.png").write_bytes(good[: len(good) // 2])
    return folder


def test_denoise_folder_reports_bad_files_and_goes_on(inputs, weights, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["denoise", str(inputs), "-o", str(out), "--weights", weights, "--backend", "torch"])
    err = capsys.readouterr().err
    assert code == 1
    assert "denoised 3 of 6 image(s)" in err and "3 failed: " in err
    for bad in ("empty.png: empty file", "notes.png: not a readable image", "truncated.png: not a readable image"):
        assert bad in err
    assert sorted(p.name for p in out.iterdir()) == ["gray16.png", "gray8.png", "palette.png"]
    assert Image.open(out / "gray16.png").mode.startswith("I;16"), "16-bit in, 16-bit out"
    assert Image.open(out / "gray8.png").size == (41, 30)


def test_denoise_never_overwrites_unless_asked(inputs, weights, capsys):
    target = inputs / "gray8.png"
    before = target.read_bytes()
    code = main(["denoise", str(target), "-o", str(inputs), "--weights", weights, "--backend", "torch"])
    assert code == 1 and "exists" in capsys.readouterr().err
    assert target.read_bytes() == before
    assert main(["denoise", str(target), "-o", str(inputs), "--weights", weights, "--overwrite"]) == 0


def test_color_image_with_gray_weights_is_a_clear_error(tmp_path, weights, capsys):
    Image.fromarray((np.zeros((8, 8, 3)) + [10, 200, 30]).astype(np.uint8)).save(tmp_path / "c.png")
    assert main(["denoise", str(tmp_path / "c.png"), "-o", str(tmp_path / "o"), "--weights", weights]) == 1
    assert "gray images" in capsys.readouterr().err


def test_load_image_kinds_and_errors(tmp_path):
    rgba = tmp_path / "rgba.png"
    Image.fromarray(np.zeros((5, 6, 4), np.uint8) + 100).save(rgba)
    assert load_image(rgba).pixels.shape == (5, 6, 3)
    assert load_image(rgba, channels=1).pixels.shape == (5, 6, 1)
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "missing.png")
    bomb = tmp_path / "bomb.png"
    Image.new("L", (1, 1)).save(bomb)
    data = bytearray(bomb.read_bytes())
    data[16:24] = (100000).to_bytes(4, "big") + (100000).to_bytes(4, "big")  # IHDR claims 100000 x 100000
    bomb.write_bytes(bytes(data))
    with pytest.raises(ImageError, match="bomb.png"):
        load_image(bomb)


def test_save_image_is_atomic_and_round_trips_16_bit(tmp_path):
    a = np.random.default_rng(0).random((9, 7, 1)).astype(np.float32)
    save_image(tmp_path / "a.png", a, bits=16)
    b = load_image(tmp_path / "a.png")
    assert b.bits == 16 and np.abs(b.pixels - a).max() < 1e-4
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]


def test_folders_recursive_counts_and_a_summary(tmp_path, weights, capsys):
    rng = np.random.default_rng(1)
    (tmp_path / "in" / "sub" / "deeper").mkdir(parents=True)
    for rel in ("a.png", "sub/b.png", "sub/deeper/a.png"):
        Image.fromarray(rng.integers(0, 256, (12, 14)).astype(np.uint8)).save(tmp_path / "in" / rel)
    args = ["denoise", str(tmp_path / "in"), "--weights", weights, "--backend", "torch"]
    assert main(args + ["-o", str(tmp_path / "flat")]) == 0
    captured = capsys.readouterr()
    assert "1 subfolder(s) skipped (pass --recursive" in captured.err
    assert sorted(p.name for p in (tmp_path / "flat").iterdir()) == ["a.png"]
    assert main(args + ["-o", str(tmp_path / "all"), "--recursive"]) == 0
    out = capsys.readouterr().out
    assert "[1 of 3]" in out and "[3 of 3]" in out and "denoised 3 of 3 image(s) into" in out
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == ["b.png", "deeper_a_png.png", "in_a_png.png"]


def test_error_lines_start_on_a_line_of_their_own_after_a_progress_bar(tmp_path, weights, capsys):
    """What a terminal shows: the text after the last carriage return of each line."""
    rng = np.random.default_rng(2)
    (tmp_path / "in").mkdir()
    Image.fromarray(rng.integers(0, 256, (40, 40)).astype(np.uint8)).save(tmp_path / "in" / "a_big.png")
    (tmp_path / "in" / "b_bad.png").write_text("not an image")
    assert main(["denoise", str(tmp_path / "in"), "-o", str(tmp_path / "o"), "--weights", weights, "--backend",
                 "torch", "--tile", "8", "--overlap", "4"]) == 1
    shown = [line.split("\r")[-1] for line in capsys.readouterr().err.split("\n")]
    errors = [line for line in shown if "error:" in line]
    assert errors and all(line.startswith("[2 of 2] error:") for line in errors), shown
