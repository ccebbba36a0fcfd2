"""Hostile files (issue 31): bombs built here, refused with bounded memory; garbage refused, not denoised;
outputs never crossed between processes."""
import json
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from mdrn_fast import MDRN
from mdrn_fast.cli import main
from mdrn_fast.images import ImageError, load_image, save_image
from mdrn_fast.weights_file import load_into, load_weights, save_weights


def _run_for_rss(code: str) -> tuple[int, str]:
    probe = code + "\nimport resource; print('RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")))
    assert out.returncode == 0, out.stderr
    return int(out.stdout.rsplit("RSS", 1)[1]), out.stdout


def peak_rss_mb(code: str) -> tuple[int, str]:
    """Run ``code`` in a fresh interpreter; (its peak RSS in MB above that of importing mdrn_fast and torch, which
    varies by build and machine, stdout)."""
    base, _ = _run_for_rss("import torch, mdrn_fast.images, mdrn_fast.weights_file")
    rss, out = _run_for_rss(code)
    return rss - base, out


def png16_bomb(path, mb=4):
    """A 16-bit gray PNG declaring 64x64 whose image data inflates to about 1000x its size."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    z = zlib.compressobj(9)
    data = b"".join(z.compress(bytes(1 << 24)) for _ in range(mb * 64)) + z.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 64, 16, 0, 0, 0, 0))
                     + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def test_png16_bomb_is_refused_within_bounded_memory(tmp_path):
    bomb = tmp_path / "bomb.png"
    png16_bomb(bomb)
    assert bomb.stat().st_size > 3_000_000
    rss, out = peak_rss_mb(f"""
from mdrn_fast.images import ImageError, load_image
try:
    load_image({str(bomb)!r})
except ImageError as e:
    print(e)""")
    assert "inflates past" in out and "bomb.png" in out
    assert rss < 1000, f"{rss} MB above the import"


def weights_bomb(path, **config):
    """A safetensors file of a few hundred bytes whose config asks for a huge model."""
    from safetensors.torch import save_file
    save_file({"x": torch.zeros(1)}, str(path), metadata={"format": "mdrn_fast.weights.v1",
                                                         "config": json.dumps(config)})


@pytest.mark.parametrize("config,message", [
    (dict(in_channels=1, channels=2500, blocks=6, scales=[2, 4]), "channels=2500"),
    (dict(in_channels=1, channels=100000, blocks=100, scales=[2, 4]), "channels=100000"),
    (dict(in_channels=1, channels=256, blocks=256, scales=[2, 4]), "parameters"),
    (dict(in_channels=1, channels=64, blocks=8, scales=[2, 4]), "missing"),  # in range: shapes from the header
    (dict(in_channels=1, channels=8, blocks=2, scales=[2, 3]), "divide the largest"),
    (dict(in_channels=2, channels=8, blocks=2, scales=[2, 4]), "in_channels=2"),
    (dict(channels=8, blocks=2, extra=1), "config keys"),
])
def test_weight_config_bombs_are_refused_at_once(tmp_path, config, message):
    path = tmp_path / "w.safetensors"
    weights_bomb(path, **config)
    assert path.stat().st_size < 400
    rss, out = peak_rss_mb(f"""
import time
from mdrn_fast.weights_file import load_weights
t = time.time()
try:
    load_weights({str(path)!r})
except ValueError as e:
    print(e, 'SECONDS', time.time() - t)""")
    assert message in out and "w.safetensors" in out
    assert float(out.split("SECONDS")[1].split()[0]) < 5
    assert rss < 1000, f"{rss} MB above the import"


def test_weight_config_that_is_not_an_object_is_a_value_error(tmp_path):
    for config in ([1, 2], "null", 3):
        path = tmp_path / "w.safetensors"
        weights_bomb(path)  # then the config replaced by a non-object
        from safetensors.torch import save_file
        save_file({"x": torch.zeros(1)}, str(path), metadata={"format": "mdrn_fast.weights.v1",
                                                             "config": json.dumps(config)})
        with pytest.raises(ValueError, match="config"):
            load_weights(path)


def tiny():
    torch.manual_seed(0)
    return MDRN(channels=8, blocks=2, backend="torch")


@pytest.mark.parametrize("spoil,message", [
    (lambda v: v.fill_(float("nan")), "NaN or infinite"),
    (lambda v: v.fill_(float("inf")), "NaN or infinite"),
    (lambda v: v.to(torch.int32), "floating point"),
    (lambda v: v[..., :1].contiguous(), "has shape"),
])
def test_damaged_weights_are_refused_with_one_line(tmp_path, spoil, message, capsys):
    from safetensors.torch import save_file
    m = tiny()
    state = {k: v.clone() for k, v in m.state_dict().items()}
    state["tail.weight"] = spoil(state["tail.weight"])
    path = tmp_path / "w.safetensors"
    save_file(state, str(path), metadata={"format": "mdrn_fast.weights.v1", "config": json.dumps(m.config())})
    with pytest.raises(ValueError, match=message):
        load_weights(path)
    with pytest.raises(ValueError, match=message):
        load_into(tiny(), path)
    # --init: every error exits 2 with one line (wrong shapes included)
    from mdrn_fast.train import TrainConfig, build_model
    from mdrn_fast.errors import UsageError
    with pytest.raises(UsageError) as e:
        build_model(TrainConfig(overrides=dict(channels=8, blocks=2), backend="torch", init=str(path)))
    assert "\n" not in str(e.value) and str(e.value).startswith("--init:")


def test_model_refuses_scales_off_the_padding_rule():
    with pytest.raises(ValueError, match="divide the largest"):
        MDRN(scales=(2, 3))
    with pytest.raises(ValueError, match="integers"):
        MDRN(scales=("a",))
    assert MDRN(channels=4, blocks=1, scales=(2, 4, 8)).multiple == 8


def test_save_weights_fsyncs_before_publishing(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    save_weights(tmp_path / "w.safetensors", tiny())
    assert events[:2] == ["fsync", "replace"]
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]


def save_tiff(path, a):
    Image.fromarray(a).save(path)
    return path


@pytest.mark.parametrize("make,message", [
    (lambda p: save_tiff(p, np.array([[0.5, np.nan], [np.inf, 0.2]], np.float32)), "NaN or infinite"),
    (lambda p: save_tiff(p, np.arange(64, dtype=np.float32).reshape(8, 8) * 4), "divide a 0-255 image by 255"),
    (lambda p: save_tiff(p, np.arange(64, dtype=np.int32).reshape(8, 8) * 1000), "32-bit integer"),
])
def test_garbage_pixels_are_refused(tmp_path, make, message):
    path = make(tmp_path / "x.tif")
    with pytest.raises(ImageError, match=message):
        load_image(path)


def test_float_image_with_noise_around_0_1_is_read(tmp_path):
    a = np.clip(np.random.default_rng(0).normal(0.5, 0.4, (8, 8)), -0.5, 1.5).astype(np.float32)
    assert np.allclose(load_image(save_tiff(tmp_path / "x.tif", a)).pixels[..., 0], a)


def test_animated_image_is_refused(tmp_path):
    frames = [Image.new("L", (8, 8), v) for v in (0, 100, 200)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageError, match="3 frames"):
        load_image(tmp_path / "a.gif")


def test_large_image_up_to_the_stated_limit_is_not_refused_by_pillow(tmp_path):
    """README: up to 400 megapixels. A header claiming 100 MP (past Pillow's default 89 MP) gets to decoding
    (here a truncated file, so no memory is spent); one claiming 401 MP is refused at the header."""
    for side, message in ((10000, "not a readable image"), (20025, "400,000,000 pixel limit")):
        Image.new("L", (1, 1)).save(tmp_path / "x.png")
        data = bytearray((tmp_path / "x.png").read_bytes())
        data[16:24] = side.to_bytes(4, "big") * 2
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
        (tmp_path / "x.png").write_bytes(bytes(data))
        with pytest.raises(ImageError, match=message):
            load_image(tmp_path / "x.png")


def test_fifo_is_refused_and_skipped_in_a_folder(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    os.mkfifo(folder / "pipe.png")
    with pytest.raises(ImageError, match="not a regular file"):
        load_image(folder / "pipe.png")  # never blocks
    Image.fromarray(np.zeros((12, 12), np.uint8)).save(folder / "ok.png")
    path = save_weights(tmp_path / "w.safetensors", tiny())
    assert main(["denoise", str(folder), "-o", str(tmp_path / "out"), "--weights", str(path),
                 "--backend", "torch"]) == 0
    assert "pipe.png: not a regular file" in capsys.readouterr().err


def test_bad_weights_stop_denoise_once(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.zeros((12, 12), np.uint8)).save(folder / f"{i}.png")
    weights_bomb(tmp_path / "w.safetensors", channels=2500, blocks=6)
    assert main(["denoise", str(folder), "-o", str(tmp_path / "out"), "--weights",
                 str(tmp_path / "w.safetensors")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--weights" in err[0] and "channels=2500" in err[0]


def test_memory_error_is_reported_for_its_file_and_the_batch_goes_on(tmp_path, capsys, monkeypatch):
    import mdrn_fast.images as images
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(np.zeros((12, 12), np.uint8)).save(folder / name)
    real = images._from_pil
    monkeypatch.setattr(images, "_from_pil", lambda im, p, c: (_ for _ in ()).throw(MemoryError())
                        if p.name == "a.png" else real(im, p, c))
    path = save_weights(tmp_path / "w.safetensors", tiny())
    assert main(["denoise", str(folder), "-o", str(tmp_path / "out"), "--weights", str(path),
                 "--backend", "torch"]) == 1
    assert "a.png: not enough memory" in capsys.readouterr().err
    assert (tmp_path / "out" / "b.png").exists()


def test_exclusive_outputs_are_never_replaced_by_another_process(tmp_path):
    """Two writers of one output: the second (as if it passed the exists check before the first wrote) is
    refused, and the first's result stays; temporary names never collide."""
    a, b = np.zeros((4, 4, 1), np.float32), np.ones((4, 4, 1), np.float32)
    save_image(tmp_path / "x.png", a, overwrite=False)
    with pytest.raises(FileExistsError):
        save_image(tmp_path / "x.png", b, overwrite=False)
    assert load_image(tmp_path / "x.png").pixels.max() == 0
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]
    # two processes, twenty files each, one folder: every file is whole and holds one writer's result
    code = ("import sys, numpy as np; from mdrn_fast.images import save_image\n"
            "v = float(sys.argv[1])\n"
            "for i in range(20):\n"
            "    try: save_image(f'{sys.argv[2]}/{i}.png', np.full((64, 64, 1), v, np.float32), overwrite=False)\n"
            "    except FileExistsError: print('kept', i)\n")
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    procs = [subprocess.Popen([sys.executable, "-c", code, v, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                              env=env) for v in ("0", "1")]
    kept = [set(p.communicate(timeout=120)[0].split()[1::2]) for p in procs]
    for i in range(20):
        value = load_image(tmp_path / f"{i}.png").pixels
        assert value.min() == value.max()
        winner = int(value.max())
        assert str(i) in kept[1 - winner] and str(i) not in kept[winner]
