"""mdrn_fast.denoise keeps what the command line keeps: orientation applied, alpha kept, 16-bit kept, the
input's mode and dtype returned, paths read like the CLI reads them, gray/color mismatches handled with a
warning, and clear ValueErrors for arrays it cannot read right."""
import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from mdrn_fast import MDRN
from mdrn_fast import png16
from mdrn_fast.inference import denoise

rng = np.random.default_rng(0)


def tiny(in_channels=1):
    torch.manual_seed(0)
    return MDRN(in_channels=in_channels, channels=8, blocks=2, backend="torch").eval()


def picture(h, w, c):
    yy, xx = np.mgrid[0:h, 0:w]
    base = 100 + 60 * np.sin(xx / 5.0) * np.cos(yy / 7.0)
    a = np.stack([base + 25 * k for k in range(c)], axis=2).clip(0, 255).astype(np.uint8)
    return a[..., 0] if c == 1 else a


def test_phone_jpeg_comes_back_upright(tmp_path):
    im = Image.fromarray(picture(24, 40, 3))
    exif = im.getexif()
    exif[0x0112] = 6  # stored landscape, shown portrait
    im.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    out = denoise(Image.open(tmp_path / "phone.jpg"), tiny(3))
    assert out.size == ImageOps.exif_transpose(Image.open(tmp_path / "phone.jpg")).size == (24, 40)
    for path in (tmp_path / "phone.jpg", str(tmp_path / "phone.jpg")):
        a = denoise(path, tiny(3))
        assert a.shape == (40, 24, 3) and a.dtype == np.uint8


@pytest.mark.parametrize("mode, model_channels", [("L", 1), ("RGB", 3), ("RGBA", 3), ("LA", 1)])
def test_pil_mode_is_returned_and_alpha_kept(mode, model_channels):
    c = {"L": 1, "LA": 1, "RGB": 3, "RGBA": 3}[mode]
    pixels = picture(20, 24, c)
    if mode in ("RGBA", "LA"):
        alpha = rng.integers(0, 256, (20, 24)).astype(np.uint8)
        pixels = np.concatenate([pixels.reshape(20, 24, c), alpha[..., None]], axis=2)
    im = Image.fromarray(pixels)
    assert im.mode == mode
    out = denoise(im, tiny(model_channels))
    assert out.mode == mode and out.size == im.size
    if mode in ("RGBA", "LA"):
        assert np.array_equal(np.asarray(out)[..., -1], alpha)


def test_pil_16_bit_stays_16_bit():
    a = (picture(20, 24, 1).astype(np.uint16) * 257 + rng.integers(0, 200, (20, 24))).astype(np.uint16)
    im = Image.fromarray(a)
    assert im.mode == "I;16"
    out = denoise(im, tiny(1))
    assert out.mode == "I;16"
    assert len(np.unique(np.asarray(out))) > 256, "more than 8 bits of levels survive"


def test_a_16_bit_color_png_path_gives_uint16_with_alpha(tmp_path):
    x = (picture(16, 20, 3).astype(np.uint16) * 257)
    x = np.concatenate([x, np.full((16, 20, 1), 1234, np.uint16)], axis=2)
    png16.write_png16(tmp_path / "deep.png", x)
    out = denoise(tmp_path / "deep.png", tiny(3))
    assert out.dtype == np.uint16 and out.shape == (16, 20, 4) and (out[..., 3] == 1234).all()


def test_gray_image_through_a_color_model_comes_back_gray_with_a_warning():
    im = Image.fromarray(picture(16, 16, 1))
    with pytest.warns(UserWarning, match="gray image with a color model"):
        out = denoise(im, tiny(3))
    assert out.mode == "L"
    with pytest.warns(UserWarning):
        assert denoise(picture(16, 16, 1), tiny(3)).shape == (16, 16)


def test_color_image_through_a_gray_model_is_denoised_per_channel_with_a_warning():
    a = picture(16, 16, 3)
    with pytest.warns(UserWarning, match="color image with a gray model"):
        out = denoise(a, tiny(1))
    assert out.shape == a.shape and out.dtype == np.uint8
    with pytest.warns(UserWarning):
        assert denoise(torch.rand(3, 16, 16), tiny(1)).shape == (3, 16, 16)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_dtype_in_dtype_out(dtype):
    base = picture(16, 16, 3)
    a = {np.uint8: base, np.uint16: base.astype(np.uint16) * 257}.get(dtype, base.astype(dtype) / 255)
    out = denoise(a, tiny(3))
    assert out.dtype == a.dtype and out.shape == a.shape


@pytest.mark.parametrize("a, words", [
    (np.zeros((8, 8), np.int32), "int32"),
    (np.zeros((8, 8), np.int64), "int64"),
    (np.full((8, 8), 200.0, np.float32), "0-255 image by 255"),
    (np.zeros((8, 8), bool), "bool"),
    (np.zeros((8, 8, 5), np.uint8), "not \\[8, 8, 5\\]"),
])
def test_arrays_it_cannot_read_right_are_a_clear_value_error(a, words):
    with pytest.raises(ValueError, match=words):
        denoise(a, tiny(1))


def test_a_path_that_is_not_an_image_names_the_file(tmp_path):
    (tmp_path / "x.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="x.png: not a readable image"):
        denoise(str(tmp_path / "x.png"), tiny(1))


def test_the_readme_snippet_on_a_phone_jpeg_writes_an_upright_picture(tmp_path, monkeypatch):
    import mdrn_fast

    im = Image.fromarray(picture(24, 40, 3))
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(tmp_path / "phone.jpg", exif=exif, quality=90)
    monkeypatch.chdir(tmp_path)
    model = mdrn_fast.pretrained("mdrn-base", sigma=25, color=True)        # color=False for gray photos
    mdrn_fast.denoise(Image.open("phone.jpg"), model).save("phone-clean.png")   # upright, as the CLI writes it
    out = Image.open(tmp_path / "phone-clean.png")
    assert out.size == (24, 40) and out.mode == "RGB"
