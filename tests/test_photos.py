"""Photos as users have them: camera orientation, alpha, 16-bit colour, every image type Pillow reads, names
that collide, unknown noise levels (`--sigma auto`), and 16-bit PNG decoding with every row filter."""
import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from mdrn_fast import png16
from mdrn_fast.catalog import pretrained, weight_name
from mdrn_fast.cli import main
from mdrn_fast.commands.denoise import output_names
from mdrn_fast.images import load_image, save_image
from mdrn_fast.model_choice import choose
from mdrn_fast.noise_level import estimate_sigma

rng = np.random.default_rng(0)


def _smooth(h, w, c):
    """A smooth test picture (denoising keeps it close), uint8 [h, w, c]."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = 100 + 60 * np.sin(xx / 7.0) * np.cos(yy / 9.0)
    return np.stack([base + 20 * k for k in range(c)], axis=2).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_pil(tmp_path, orientation):
    im = Image.fromarray(rng.integers(0, 256, (6, 10, 3)).astype(np.uint8))
    exif = im.getexif()
    exif[0x0112] = orientation
    im.save(tmp_path / "p.jpg", exif=exif, quality=100)
    want = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "p.jpg"))).astype(np.float32) / 255
    got = load_image(tmp_path / "p.jpg").pixels
    assert got.shape == want.shape and np.array_equal(got, want)


def test_phone_photo_comes_out_upright_without_a_stale_tag(tmp_path):
    """A portrait phone JPEG: stored landscape with orientation 6; the output is portrait and has no tag."""
    im = Image.fromarray(_smooth(40, 64, 3))
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    assert main(["denoise", str(tmp_path / "phone.jpg"), "-o", str(tmp_path / "out"), "--sigma", "25"]) == 0
    out = Image.open(tmp_path / "out" / "phone.png")
    assert out.size == (40, 64), "rotated upright: 40 wide, 64 high"
    assert out.getexif().get(0x0112) is None


@pytest.mark.parametrize("mode", ["LA", "RGBA"])
def test_alpha_is_kept(tmp_path, mode):
    c = 1 if mode == "LA" else 3
    pixels = _smooth(24, 20, c)
    alpha = rng.integers(0, 256, (24, 20, 1)).astype(np.uint8)
    Image.fromarray(np.concatenate([pixels, alpha], axis=2)).save(tmp_path / "a.png")
    assert main(["denoise", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--sigma", "15"]) == 0
    out = Image.open(tmp_path / "out" / "a.png")
    assert out.mode == mode
    assert np.array_equal(np.asarray(out)[..., -1], alpha[..., 0]), "alpha passes through untouched"


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_16_bit_in_16_bit_out(tmp_path, channels):
    x = (_smooth(20, 24, channels).astype(np.uint16) * 257 + rng.integers(0, 200, (20, 24, channels))).astype(np.uint16)
    png16.write_png16(tmp_path / "deep.png", x)
    loaded = load_image(tmp_path / "deep.png")
    assert loaded.bits == 16 and np.allclose(loaded.pixels, x[..., :3 if channels > 1 else 1] / 65535, atol=1e-7)
    assert main(["denoise", str(tmp_path / "deep.png"), "-o", str(tmp_path / "out"), "--sigma", "15"]) == 0
    out = png16.read_png16(tmp_path / "out" / "deep.png")
    assert out.dtype == np.uint16 and out.shape == x.shape
    assert len(np.unique(out[..., 0])) > 256, "more than 8 bits of levels survive"
    if channels == 4:
        assert np.array_equal(out[..., 3], x[..., 3])


def _filter_rows(raw: np.ndarray, kinds, bpp: int) -> bytes:
    """PNG filtering (the encoder side, written out plainly) of [H, stride] bytes with one filter per row."""
    out, prior = [], np.zeros(raw.shape[1], np.int64)
    for y, kind in enumerate(kinds):
        row = raw[y].astype(np.int64)
        a = np.concatenate([np.zeros(bpp, np.int64), row[:-bpp]])
        c = np.concatenate([np.zeros(bpp, np.int64), prior[:-bpp]])
        if kind == 0:
            pred = 0
        elif kind == 1:
            pred = a
        elif kind == 2:
            pred = prior
        elif kind == 3:
            pred = (a + prior) // 2
        else:
            p = a + prior - c
            pa, pb, pc = abs(p - a), abs(p - prior), abs(p - c)
            pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, prior, c))
        out.append(bytes([kind]) + ((row - pred) % 256).astype(np.uint8).tobytes())
        prior = row
    return b"".join(out)


def test_16_bit_png_with_every_row_filter_decodes_exactly(tmp_path):
    import struct
    import zlib

    x = rng.integers(0, 65536, (10, 7, 3)).astype(np.uint16)
    rows = x.astype(">u2").view(np.uint8).reshape(10, -1)
    data = _filter_rows(rows, [0, 1, 2, 3, 4, 4, 3, 2, 1, 0], bpp=6)

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    (tmp_path / "f.png").write_bytes(png16.SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", 7, 10, 16, 2, 0, 0, 0))
                                     + chunk(b"IDAT", zlib.compress(data)) + chunk(b"IEND", b""))
    assert np.array_equal(png16.read_png16(tmp_path / "f.png"), x)
    raw = np.frombuffer(data, np.uint8).reshape(10, -1)
    assert np.array_equal(png16._unfilter_numpy(raw, 6), png16.unfilter(raw, 6)), "C++ and NumPy agree"


def test_damaged_16_bit_png_is_one_clear_error(tmp_path):
    png16.write_png16(tmp_path / "d.png", np.zeros((8, 8, 3), np.uint16))
    data = (tmp_path / "d.png").read_bytes()
    (tmp_path / "d.png").write_bytes(data[:-20])
    with pytest.raises(ValueError, match="d.png: not a readable image"):
        load_image(tmp_path / "d.png")


def test_every_pillow_type_in_folders_and_name_collisions(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(_smooth(16, 16, 3)).save(folder / "a.webp")
    Image.fromarray(_smooth(16, 16, 3)).save(folder / "a.png")
    Image.fromarray(_smooth(16, 16, 1)[..., 0]).save(folder / "b.tif")
    (folder / ".hidden.png").write_bytes(b"")
    assert main(["denoise", str(folder), "-o", str(tmp_path / "out"), "--sigma", "25"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_png.png", "a_webp.png", "b.png"]


def test_output_names_stay_distinct():
    from pathlib import Path

    files = [Path("x/a.png"), Path("y/a.png"), Path("x/a.jpg"), Path("x/b.png"), Path("z/x/a.png")]
    names = output_names(files)
    assert names[Path("x/a.jpg")] == "a_jpg.png" and names[Path("x/b.png")] == "b.png"
    assert names[Path("y/a.png")] == "y_a_png.png"
    assert len(set(names.values())) == len(files)


def test_empty_folder_is_an_error_not_silence(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["denoise", str(tmp_path / "empty"), "-o", str(tmp_path / "out")]) == 2
    assert "no images" in capsys.readouterr().err


def test_sigma_auto_picks_the_model_of_the_estimated_level(tmp_path, capsys):
    clean = _smooth(64, 64, 1)[..., 0].astype(np.float32)
    for sigma in (15, 50):
        noisy = np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(tmp_path / f"n{sigma}.png")
    assert main(["denoise", str(tmp_path / "n15.png"), str(tmp_path / "n50.png"), "-o", str(tmp_path / "o")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "model s15)" in lines[0] and "model s50)" in lines[1], lines


def test_color_photo_at_a_level_with_no_color_model_uses_the_gray_one_and_says_it_once(tmp_path, capsys):
    for i in range(2):
        Image.fromarray(_smooth(16, 16, 3)).save(tmp_path / f"c{i}.png")
    assert main(["denoise", str(tmp_path / "c0.png"), str(tmp_path / "c1.png"), "-o", str(tmp_path / "o"),
                 "--sigma", "15"]) == 0
    err = capsys.readouterr().err
    assert err.count("no color mdrn-base model at sigma 15") == 1
    assert "using the gray s15 model on each RGB channel" in err


@pytest.mark.parametrize("sigma", ["-5", "0", "300", "loud"])
def test_bad_sigma_is_a_usage_error(tmp_path, sigma, capsys):
    Image.fromarray(_smooth(8, 8, 1)[..., 0]).save(tmp_path / "g.png")
    assert main(["denoise", str(tmp_path / "g.png"), "-o", str(tmp_path / "o"), "--sigma", sigma]) == 2
    err = capsys.readouterr().err
    assert "--sigma" in err and "Traceback" not in err and err.count("\n") == 1


def test_sigma_as_a_float_names_the_shipped_file():
    assert weight_name("mdrn-base", 25.0, False) == weight_name("mdrn-base", "25", False) == "mdrn-base-gray-s25.safetensors"
    assert isinstance(pretrained("mdrn-base", sigma=25.0), torch.nn.Module)
    level = {sigma: choose("mdrn-base", sigma, False).shipped.lo for sigma in (20.1, 5, 40)}  # ships 15, 25, 50
    assert level[20.1] == 25
    assert level[5] == 15 and level[40] == 50


@pytest.mark.parametrize("sigma", [5, 15, 25, 50])
def test_noise_level_estimate_on_known_noise(sigma):
    """On a smooth picture with known AWGN the estimate is within 10% (+1) of the truth; the error on the
    standard sets, PNG and JPEG, is in README (Photos); JPEGs and grain: tests/test_noise_level.py."""
    clean = _smooth(256, 256, 3).astype(np.float32) / 255
    noisy = clean + rng.normal(0, sigma / 255, clean.shape).astype(np.float32)
    assert estimate_sigma(noisy) == pytest.approx(sigma, rel=0.1, abs=1.0)


def test_eval_scores_a_folder_of_color_images_in_color(tmp_path, capsys):
    folder = tmp_path / "c"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(_smooth(24, 24, 3)).save(folder / f"{i}.png")
    assert main(["eval", "--set", str(folder), "--sigma", "25"]) == 0
    assert "(color)" in capsys.readouterr().out
    assert main(["eval", "--set", str(folder), "--sigma", "25", "--gray"]) == 0
    assert "(gray)" in capsys.readouterr().out
