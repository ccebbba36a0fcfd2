"""One model choice for every entry point (mdrn_fast.model_choice): blind first, the nearest level within 20 %,
a gray model on each channel for color, a note whenever the choice is not exact; one sigma range; shipped
names only."""
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import mdrn_fast
from mdrn_fast import MDRN
from mdrn_fast import catalog
from mdrn_fast.channel_split import GrayOnChannels
from mdrn_fast.cli import main
from mdrn_fast.model_choice import SIGMA_RANGE, check_sigma, choose
from mdrn_fast.weights_file import save_weights


def tiny(in_channels=1):
    torch.manual_seed(in_channels)
    return MDRN(in_channels=in_channels, channels=8, blocks=2, backend="torch").eval()


@pytest.fixture
def weights(tmp_path, monkeypatch):
    """A weights folder of tiny models: base gray s15/s25/s50, base color s25, and a blind pair."""
    folder = tmp_path / "weights"
    folder.mkdir()
    for kind, level in [("gray", "15"), ("gray", "25"), ("gray", "50"), ("color", "25")]:
        save_weights(folder / f"base-{kind}-s{level}.safetensors", tiny(3 if kind == "color" else 1))
    save_weights(folder / "blind-gray-s0-55.safetensors", tiny(1))
    save_weights(folder / "blind-gray-s25.safetensors", tiny(1))
    monkeypatch.setattr(catalog, "WEIGHTS_DIR", folder)
    return folder


def test_exact_level_has_no_note(weights):
    c = choose("base", 25, False)
    assert c.shipped.file.name == "base-gray-s25.safetensors" and c.note == "" and c.split is None


def test_a_blind_model_is_preferred_when_its_range_holds_sigma(weights):
    for sigma in (3, 25, 40):
        c = choose("blind", sigma, False)
        assert c.shipped.file.name == "blind-gray-s0-55.safetensors" and c.note == "", sigma
    far = choose("blind", 80, False)  # outside the blind range: the nearest, said
    assert far.note and "55" in far.note


def test_nearest_level_within_20_percent_with_a_note(weights):
    c = choose("base", 28, False)
    assert c.shipped.lo == 25 and "nearest" in c.note and "20%" in c.note
    c = choose("base", 37.5, False)  # 12.5 from both: the higher level (removes more noise), said as far
    assert c.shipped.lo == 50 and "away" in c.note


def test_color_far_from_the_color_level_uses_the_gray_model_on_each_channel(weights):
    for sigma, level in [(50, 50), (15, 15), (45, 50)]:
        c = choose("base", sigma, True)
        assert not c.shipped.color and c.shipped.lo == level and c.split, sigma
        assert "no color base model at sigma" in c.note and "gray" in c.note
        assert isinstance(c.load("torch"), GrayOnChannels)
    c = choose("base", 27, True)  # the color s25 is within 20 %
    assert c.shipped.color and c.shipped.lo == 25 and c.split is None


def test_gray_on_channels_runs_the_gray_model_per_channel(weights):
    gray = tiny(1)
    y = torch.rand(1, 3, 16, 16)
    for split in ("rgb", "opponent"):
        m = GrayOnChannels(gray, split)
        with torch.no_grad():
            out = m(y)
        assert out.shape == y.shape
    ident = GrayOnChannels(torch.nn.Identity(), "opponent")
    assert torch.allclose(ident(y), y, atol=1e-6), "the opponent basis is inverted exactly"
    with torch.no_grad():
        assert torch.allclose(GrayOnChannels(gray, "rgb")(y)[:, 1:2], gray(y[:, 1:2].contiguous()))


@pytest.mark.parametrize("bad", [0, -5, 101, 300, "loud", float("nan")])
def test_one_sigma_range_everywhere(weights, bad, tmp_path, capsys):
    with pytest.raises(ValueError, match=r"\(0, 100\]|expected a number"):
        check_sigma(bad)
    with pytest.raises(ValueError):
        mdrn_fast.pretrained("base", sigma=bad)
    Image.fromarray(np.full((8, 8), 128, np.uint8)).save(tmp_path / "g.png")
    for argv in (["denoise", str(tmp_path / "g.png"), "-o", str(tmp_path / "o"), "--sigma", str(bad)],
                 ["eval", "--set", str(tmp_path), "--sigma", str(bad), "--model", "base"],
                 ["demo", "--sigma", str(bad), "--model", "base", "-o", str(tmp_path / "d.png")]):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse's own refusal of a non-number
            code = e.code
        err = capsys.readouterr().err
        assert code == 2 and "--sigma" in err and "Traceback" not in err, (argv, err)
    assert SIGMA_RANGE == (0.0, 100.0)


def test_pretrained_takes_float_sigmas_with_the_cli_rule_and_a_warning(weights):
    with pytest.warns(UserWarning, match="nearest, s25"):
        m = mdrn_fast.pretrained("base", sigma=27.5)
    with torch.no_grad():
        y = torch.rand(1, 1, 12, 12)
        assert torch.equal(m(y), mdrn_fast.pretrained("base", sigma=25)(y))
    with pytest.warns(UserWarning, match="gray s50 model on each"):
        assert isinstance(mdrn_fast.pretrained("base", sigma=50, color=True), GrayOnChannels)


def test_pretrained_takes_the_names_list_pretrained_shows(weights):
    for entry in mdrn_fast.list_pretrained():
        for name in (entry["file"], entry["file"].removesuffix(".safetensors")):
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                assert isinstance(mdrn_fast.pretrained(name), MDRN), name


@pytest.mark.parametrize("name", ["../x", "/tmp/a.safetensors", "weights/base-gray-s25", ".hidden", ""])
def test_pretrained_refuses_paths(weights, name):
    with pytest.raises(ValueError, match="load_weights"):
        mdrn_fast.pretrained(name)


def test_unknown_name_lists_what_ships(weights):
    with pytest.raises(FileNotFoundError, match="shipped: base, blind"):
        mdrn_fast.pretrained("nothing", sigma=25)


def test_eval_and_demo_use_the_same_choice(weights, tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16)).astype(np.uint8)).save(folder / "a.png")
    assert main(["eval", "--set", str(folder), "--sigma", "20", "--model", "base", "--backend", "torch"]) == 0
    assert "nearest, s25" in capsys.readouterr().err
    assert main(["demo", "--image", str(folder / "a.png"), "--sigma", "45", "--model", "base", "--backend",
                 "torch", "-o", str(tmp_path / "d.png")]) == 0
    assert "nearest, s50 (within 20%" in capsys.readouterr().err


def test_shipped_color_choice_at_sigma_50_and_15_is_the_gray_model():
    """The shipped mdrn-base: color ships s25 only; sigma 50 and 15 color photos get the gray s50 / s15 model
    on each channel (CBSD68: +3.3 dB at 50, +0.9 at 15 over the color s25 one; README, Photos)."""
    for sigma in (15, 50):
        c = choose("mdrn-base", sigma, True)
        assert not c.shipped.color and c.shipped.lo == sigma and c.split
    assert choose("mdrn-base", 25, True).shipped.color


def test_gray_on_channels_is_tiled_channel_by_channel_like_the_whole_image():
    from mdrn_fast.inference import denoise

    m = GrayOnChannels(tiny(1), "rgb")
    a = np.random.default_rng(1).random((40, 36, 3)).astype(np.float32)
    whole = denoise(a, m)
    tiled = denoise(a, m, tile=16, mode="exact")
    assert np.abs(whole - tiled).max() < 1e-4
