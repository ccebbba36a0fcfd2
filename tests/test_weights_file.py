"""Weight files: round trip, and every bad file refused with a clear message, never executed."""
import json
import pickle

import pytest
import torch

from mdrn_fast import MDRN, mdrn
from mdrn_fast.weights_file import load_into, load_weights, read_metadata, save_weights


def tiny():
    return MDRN(channels=8, blocks=2, backend="torch")


def test_round_trip(tmp_path):
    m = tiny()
    path = save_weights(tmp_path / "w.safetensors", m, preset="custom", sigma=25, val_psnr=30.5)
    loaded, meta = load_weights(path, backend="torch")
    assert meta["sigma"] == "25" and json.loads(meta["val_psnr"]) == 30.5
    assert loaded.config() == m.config()
    y = torch.rand(1, 1, 12, 12)
    with torch.no_grad():
        assert torch.equal(loaded(y), m.eval()(y))
    assert not list(tmp_path.glob("*.tmp")), "the temporary file must be renamed away"


def test_wrong_preset_is_refused(tmp_path):
    path = save_weights(tmp_path / "w.safetensors", tiny())
    with pytest.raises(ValueError, match="made for"):
        load_into(mdrn("mdrn-tiny"), path)


def test_mismatching_tensors_are_refused(tmp_path):
    from safetensors.torch import save_file

    m = tiny()
    state = {k: v for k, v in m.state_dict().items() if not k.startswith("tail")}
    save_file(state, str(tmp_path / "w.safetensors"),
              metadata={"format": "mdrn_fast.weights.v1", "config": json.dumps(m.config())})
    with pytest.raises(ValueError, match="missing"):
        load_weights(tmp_path / "w.safetensors")


def test_truncated_file_is_refused(tmp_path):
    path = save_weights(tmp_path / "w.safetensors", tiny())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="w.safetensors"):
        load_weights(path)


@pytest.mark.parametrize("content", [b"", b"not a weight file at all", b"\x89PNG\r\n\x1a\n" + b"0" * 64])
def test_garbage_is_refused(tmp_path, content):
    path = tmp_path / "w.safetensors"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a readable safetensors"):
        read_metadata(path)


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))


def test_pickle_that_runs_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps({"state": _Exploit()}))
    with pytest.raises(ValueError):
        load_weights(path)
    assert not (tmp_path / "pwned").exists()
    # a torch checkpoint read the only way this project reads one (weights_only) refuses it too
    checkpoint = tmp_path / "evil.pt"
    torch.save({"state": _Exploit()}, checkpoint)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(checkpoint, weights_only=True)
    assert not (tmp_path / "pwned").exists()
