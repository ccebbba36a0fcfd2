"""Patches drawn on the training device: each is a true crop of a training image under one of the 8
symmetries of the square, all 8 occur, the draw is a pure function of (seed, step, rank), and training on
them resumes exactly."""
import numpy as np
import pytest
import torch
from PIL import Image

from mdrn_fast.device_patches import DevicePatches
from mdrn_fast.train import TrainConfig, run
from mdrn_fast.errors import UsageError


@pytest.fixture
def folder(tmp_path):
    """Three images of different sizes with distinct pixel values, so that a patch names where it came from."""
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(13, 17), (20, 11), (9, 9)]):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(tmp_path / f"im{i}.png")
    return tmp_path


def _symmetries(a: np.ndarray):
    """The 8 images of a [C, P, P] patch under flips, rotations and transposition."""
    for t in (a, a.transpose(0, 2, 1)):
        for r in range(4):
            yield np.rot90(t, r, axes=(1, 2))


def _find(patch: np.ndarray, images: list[np.ndarray]):
    """(image, top, left, symmetry) of a crop equal to ``patch`` under some symmetry, or None."""
    p = patch.shape[-1]
    for n, im in enumerate(images):
        for top in range(im.shape[1] - p + 1):
            for left in range(im.shape[2] - p + 1):
                crop = im[:, top:top + p, left:left + p]
                for s, sym in enumerate(_symmetries(crop)):
                    if np.array_equal(sym, patch):
                        return n, top, left, s
    return None


@pytest.mark.parametrize("channels", [1, 3])
def test_every_patch_is_a_crop_of_an_image_under_a_symmetry(folder, channels):
    patches = DevicePatches(str(folder), channels, patch=5, seed=3)
    from mdrn_fast.images import load_image

    images = [load_image(f, channels=channels).pixels.transpose(2, 0, 1) for f in sorted(folder.glob("*.png"))]
    found = set()
    for step in range(6):
        batch = patches.batch(step, 16)
        assert batch.shape == (16, channels, 5, 5) and batch.dtype == torch.float32
        for patch in batch.numpy():
            where = _find(patch, images)
            assert where is not None, "a patch is not a crop of any training image"
            found.add(where[0])
    assert found == {0, 1, 2}, "every image is drawn"


def test_all_eight_symmetries_occur(folder):
    """A patch of a 2x2-asymmetric source identifies its symmetry uniquely."""
    ramp = (np.arange(36).reshape(6, 6) * 7).astype(np.uint8)
    for f in folder.glob("*.png"):
        f.unlink()
    Image.fromarray(ramp).save(folder / "ramp.png")
    patches = DevicePatches(str(folder), 1, patch=6, seed=0)
    base = patches.batch(0, 64, rank=0)
    source = ramp.astype(np.float32)[None] / 255
    kinds = {next(s for s, sym in enumerate(_symmetries(source)) if np.allclose(sym, p)) for p in base.numpy()}
    assert kinds == set(range(8))
    plain = DevicePatches(str(folder), 1, patch=6, seed=0, augment=False).batch(0, 8)
    assert torch.equal(plain, torch.from_numpy(source).expand(8, 1, 6, 6))


def test_the_draw_depends_only_on_seed_step_and_rank(folder):
    a = DevicePatches(str(folder), 1, patch=4, seed=1)
    b = DevicePatches(str(folder), 1, patch=4, seed=1)
    assert torch.equal(a.batch(7, 8), b.batch(7, 8))
    assert not torch.equal(a.batch(7, 8), a.batch(8, 8))
    assert not torch.equal(a.batch(7, 8, rank=1), a.batch(7, 8))
    assert not torch.equal(DevicePatches(str(folder), 1, patch=4, seed=2).batch(7, 8), a.batch(7, 8))


def test_images_smaller_than_the_patch_are_refused(folder):
    with pytest.raises(ValueError, match="smaller than the 10-pixel patch"):
        DevicePatches(str(folder), 1, patch=10)


def _config(folder, out, **kw):
    base = dict(preset="mdrn-tiny", overrides={"channels": 8, "blocks": 2}, train_set=str(folder), val_images=0,
                patch=8, batch=2, steps=4, backend="torch", device="cpu", out=str(out), ckpt_every=2, log_every=1,
                loader="device")  # on the CPU: bitwise resume needs deterministic kernels
    return TrainConfig(**(base | kw))


def test_training_on_device_patches_resumes_exactly(folder, tmp_path):
    full = run(_config(folder, tmp_path / "full", channels_last=True))
    run(_config(folder, tmp_path / "split", channels_last=True), stop_after=2)
    second = run(_config(folder, tmp_path / "split", channels_last=True), resume=str(tmp_path / "split"
                                                                                     / "checkpoint.pt"))
    assert second["losses"] == full["losses"][2:]


def test_init_starts_from_a_weight_file(folder, tmp_path):
    first = run(_config(folder, tmp_path / "a", steps=2))
    tuned = run(_config(folder, tmp_path / "b", steps=1, lr=1e-12, init=first["weights"]))
    for (name, p), q in zip(first["model"].state_dict().items(), tuned["model"].state_dict().values()):
        torch.testing.assert_close(q, p, rtol=0, atol=1e-9, msg=name)
    with pytest.raises(UsageError, match="--init"):
        run(_config(folder, tmp_path / "c", init=str(tmp_path / "missing.safetensors")))
    with pytest.raises(UsageError, match="--loader"):
        run(_config(folder, tmp_path / "d", loader="gpu"))
