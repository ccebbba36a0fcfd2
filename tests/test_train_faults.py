"""Training never loses work: SIGINT/SIGTERM end a run after a step with its checkpoint and the command that
continues it, a diverging run keeps its last good checkpoint, the weights are written before the run is marked
complete, and a resumed run refuses flags that would change its network."""
import os
import signal
import stat
import subprocess
import sys
import time

import pytest
import torch

from helpers import random_gray_pngs
from mdrn_fast.checkpoint import load_checkpoint
from mdrn_fast.cli import main
from mdrn_fast.train import Diverged, Interrupted, Reconstruction, build_model, run
from test_train import _cli_args, config


@pytest.fixture
def images(tmp_path):
    return random_gray_pngs(tmp_path / "imgs", 3, (40, 36))


class SignalAt(Reconstruction):
    """The plain objective, which sends this process ``sig`` during its ``at``-th forward (as Ctrl-C would)."""

    def __init__(self, model, at: int, sig=signal.SIGINT):
        super().__init__(model)
        self.calls, self.at, self.sig = 0, at, sig

    def forward(self, clean, noisy, sigma):
        self.calls += 1
        if self.calls == self.at:
            os.kill(os.getpid(), self.sig)
        return super().forward(clean, noisy, sigma)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_ends_the_step_saves_and_resumes_to_the_same_parameters(images, tmp_path, sig):
    full = run(config(images, tmp_path / "full", ckpt_every=100))
    cfg = config(images, tmp_path / "cut", ckpt_every=100)
    with pytest.raises(Interrupted) as caught:
        run(cfg, objective=SignalAt(build_model(cfg), at=2, sig=sig))
    assert caught.value.step == 2 and caught.value.signal_name == sig.name
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["step"] == 2, "the interrupted step is saved"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, "the handlers are given back"
    rest = run(config(images, tmp_path / "cut", ckpt_every=100), resume=str(tmp_path / "cut" / "checkpoint.pt"))
    assert rest["losses"] == full["losses"][2:]
    for p, q in zip(full["model"].parameters(), rest["model"].parameters()):
        assert torch.equal(p, q)


def test_sigterm_to_the_command_prints_how_to_continue(images, tmp_path):
    out = tmp_path / "run"
    argv = _cli_args(images, out, "--steps", "100000", "--ckpt-every", "100000", "--log-every", "1",
                     "--val-images", "0")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "mdrn_fast", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.time() + 120
        while not (out / "model.safetensors").exists() and time.time() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.5)
            if out.is_dir():  # the run folder exists once the first step is about to start
                time.sleep(3)
                break
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, err[-2000:]
    assert f"continue with: mdrn-fast train --resume {out}" in err, err[-2000:]
    assert "Traceback" not in err
    assert load_checkpoint(out / "checkpoint.pt")["step"] >= 1


def test_divergence_keeps_the_last_good_checkpoint_and_says_the_step(images, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(_cli_args(images, out, "--steps", "2", "--ckpt-every", "1")) == 0
    good = load_checkpoint(out / "checkpoint.pt")
    weights = (out / "model.safetensors").read_bytes()
    code = main(["train", "--resume", str(out), "--steps", "60", "--lr", "1e30", "--ckpt-every", "1"])
    err = capsys.readouterr().err
    assert code == 1 and "training diverged at step" in err and "kept the last good checkpoint" in err, err
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["step"] >= good["step"]
    assert all(torch.isfinite(v).all() for v in state["objective"].values() if v.is_floating_point())
    assert (out / "model.safetensors").read_bytes() == weights, "the last weights are not replaced"


def test_non_finite_weights_are_never_checkpointed(images, tmp_path, monkeypatch):
    cfg = config(images, tmp_path / "r", ckpt_every=1)
    model = build_model(cfg)
    original = torch.optim.Adam.step

    def poisoned(self, *a, **k):  # the third update writes a NaN into the weights (the loss stays finite)
        result = original(self, *a, **k)
        self._steps = getattr(self, "_steps", 0) + 1
        if self._steps == 3:
            with torch.no_grad():
                self.param_groups[0]["params"][0].view(-1)[0] = float("nan")
        return result

    monkeypatch.setattr(torch.optim.Adam, "step", poisoned)
    with pytest.raises(Diverged, match="at step 3: the weights are"):
        run(cfg, objective=Reconstruction(model))
    assert load_checkpoint(tmp_path / "r" / "checkpoint.pt")["step"] == 2


def test_a_kill_before_the_weights_file_is_repaired_by_resume(images, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(_cli_args(images, out, "--steps", "3")) == 0
    (out / "model.safetensors").unlink()  # as if killed after the final checkpoint (now written after it)
    assert main(["train", "--resume", str(out)]) == 0
    assert "wrote its weights" in capsys.readouterr().out
    assert (out / "model.safetensors").stat().st_size > 1000


def test_the_final_weights_come_before_the_final_checkpoint(images, tmp_path, monkeypatch):
    import mdrn_fast.train as train_module

    order = []
    real_weights, real_checkpoint = train_module.save_weights, train_module.save_checkpoint
    monkeypatch.setattr(train_module, "save_weights", lambda p, *a, **k: order.append("weights") or real_weights(p, *a, **k))
    monkeypatch.setattr(train_module, "save_checkpoint",
                        lambda p, s: order.append(f"checkpoint {s['step']}") or real_checkpoint(p, s))
    run(config(images, tmp_path / "r", ckpt_every=3, val_images=0))
    assert order == ["checkpoint 3", "weights", "checkpoint 6"]


def test_resume_with_another_network_names_the_setting(images, tmp_path, capsys):
    out = tmp_path / "r"
    run(config(images, out), stop_after=3)
    capsys.readouterr()
    for flags, words in [(["--preset", "mdrn-base"], '--preset "mdrn-tiny", not "mdrn-base"'),
                         (["--color"], "--color false, not true"),
                         (["--overrides", '{"channels": 16}'], "--overrides")]:
        assert main(["train", "--resume", str(out), *flags]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err and "a resumed run keeps its network" in err, err


def test_resume_of_a_fifo_is_refused(tmp_path, capsys):
    fifo = tmp_path / "checkpoint.pt"
    os.mkfifo(fifo)
    assert main(["train", "--resume", str(fifo)]) == 2
    assert "not a regular file" in capsys.readouterr().err


def test_run_files_are_readable_like_any_other(images, tmp_path):
    out = tmp_path / "r"
    run(config(images, out, val_images=0))
    umask = os.umask(0)
    os.umask(umask)
    for name in ("checkpoint.pt", "model.safetensors"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o666 & ~umask, name
