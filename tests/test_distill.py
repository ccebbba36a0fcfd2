"""HMDS: each feature loss on each backend against the reference (forward, gradients), FAKD memory scaling,
pairing, and the wiring of the objective (frozen teacher, trained adapters and student)."""
import json
import subprocess
import sys

import pytest
import torch

from helpers import FUSED, assert_close, device_for, random_gray_pngs, require
from mdrn_fast import MDRN
from mdrn_fast.models import DnCNN
from mdrn_fast.distill import HMDS, feature_loss, pair_indices
from mdrn_fast.distill.losses import REFERENCE
from mdrn_fast.registry import _IMPLS

# (student shape, teacher channels): HW not a multiple of any tile (16, 64, 512), C_s != C_t
SHAPES = [((2, 5, 7, 9), 12), ((1, 16, 27, 29), 32), ((3, 3, 5, 4), 3)]


@pytest.mark.parametrize("backend", FUSED)
@pytest.mark.parametrize("kind", ["l1", "l2", "at", "fakd"])
@pytest.mark.parametrize("shape,ct", SHAPES)
def test_loss_matches_reference(backend, kind, shape, ct):
    require(backend)
    if (f"distill_{kind}", backend) not in _IMPLS:
        pytest.skip(f"{kind} has no fused {backend} kernel; 'auto' uses the reference")
    dev = device_for(backend)
    if kind in ("l1", "l2"):
        ct = shape[1]
    fs = torch.randn(shape, device=dev, requires_grad=True)
    ft = torch.randn(shape[0], ct, *shape[2:], device=dev, requires_grad=True)
    got = feature_loss(fs, ft, kind=kind, backend=backend)
    fs64, ft64 = (t.detach().double().cpu().requires_grad_() for t in (fs, ft))
    ref = REFERENCE[kind](fs64, ft64)
    assert_close(got, ref, 1e-6, 1e-5, f"{kind} value")
    for a, e, name in zip(torch.autograd.grad(got, (fs, ft)), torch.autograd.grad(ref, (fs64, ft64)), "st"):
        assert_close(a, e, 1e-7, 1e-4, f"{kind} grad f{name}")


@pytest.mark.parametrize("kind", ["l1", "l2", "at", "fakd"])
def test_cpu_gradcheck(kind):
    require("cpu")
    fs = torch.randn(2, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    ft = torch.randn(2, 3 if kind in ("l1", "l2") else 4, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: feature_loss(a, b, kind, backend="cpu"), (fs, ft))


@pytest.mark.parametrize("backend", FUSED)
@pytest.mark.parametrize("kind", ["l1", "l2", "at", "fakd"])
def test_half_precision(backend, kind):
    """float16 features (as under autocast): the fused value and gradient stay near the float64 reference."""
    require(backend)
    dev = device_for(backend)
    fs = torch.randn(2, 8, 11, 13, device=dev).half().requires_grad_()
    ft = torch.randn(2, 8, 11, 13, device=dev).half()
    got = feature_loss(fs, ft, kind=kind, backend=backend)
    fs64 = fs.detach().double().cpu().requires_grad_()
    ref = REFERENCE[kind](fs64, ft.double().cpu())
    assert_close(got.float(), ref, 2e-3, 1e-2, f"{kind} float16 value")
    (grad,) = torch.autograd.grad(got, fs)
    (ref_grad,) = torch.autograd.grad(ref, fs64)
    assert grad.dtype == torch.float16
    assert_close(grad.float(), ref_grad, 1e-3 * ref_grad.abs().max().item(), 2e-2, f"{kind} float16 grad")


def test_lists_weights_and_errors():
    fs = [torch.randn(1, 4, 6, 6) for _ in range(2)]
    ft = [torch.randn(1, 4, 6, 6) for _ in range(2)]
    both = feature_loss(fs, ft, "l1", weights=[1.0, 1.0], backend="torch")
    assert torch.allclose(both, REFERENCE["l1"](fs[0], ft[0]) + REFERENCE["l1"](fs[1], ft[1]))
    with pytest.raises(ValueError, match="as many"):
        feature_loss(fs, ft[:1], "l1")
    with pytest.raises(ValueError, match="kind"):
        feature_loss(fs, ft, "kl")
    with pytest.raises(ValueError, match="spatial size"):
        feature_loss(torch.randn(1, 4, 6, 6), torch.randn(1, 4, 6, 5), "fakd")


def test_pairing_by_relative_depth():
    assert pair_indices(4, 8) == [2, 4, 6, 8]
    assert pair_indices(6, 8) == [1, 3, 4, 5, 7, 8]
    assert pair_indices(4, 4) == [1, 2, 3, 4]


@pytest.mark.parametrize("strategy,loss,teacher", [("A", "fakd", "dncnn"), ("A", "l1", "mdrn"), ("D", "l1", "mdrn")])
def test_hmds_wiring(strategy, loss, teacher):
    torch.manual_seed(0)
    student = MDRN(channels=8, blocks=4, backend="torch")
    t = DnCNN(channels=12, depth=10, features=8) if teacher == "dncnn" else MDRN(channels=12, blocks=8, backend="torch")
    hmds = HMDS(student, t, strategy=strategy, loss=loss, weight=1.0)
    assert hmds.pairs == [2, 4, 6, 8]
    clean = torch.rand(2, 1, 16, 16)
    loss_value, stats = hmds.train()(clean, clean + 0.1 * torch.randn_like(clean), torch.full((2,), 25.0))
    assert set(stats) == {"l1", "distill"} and stats["distill"] > 0
    loss_value.backward()
    assert all(p.grad is None for p in t.parameters()), "the teacher must get no gradient"
    assert not t.training, "the teacher stays in eval mode"
    assert all(p.grad is not None for p in student.parameters() if p.requires_grad)
    adapters = list(hmds.adapters.parameters())
    assert (len(adapters) > 0) == (loss == "l1")  # only l1/l2 across widths need adapters
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in adapters)


PEAK_SCRIPT = """
import resource, sys, torch
from mdrn_fast.distill import feature_loss
backend = sys.argv[1]
torch.set_num_threads(1)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for side in (48, 72, 96):
    fs = torch.randn(1, 16, side, side, requires_grad=True)
    ft = torch.randn(1, 16, side, side)
    feature_loss(fs, ft, "fakd", backend=backend).backward()
    print(side * side, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024, flush=True)
"""


def _peaks(backend):
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, backend], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return [tuple(map(float, line.split())) for line in out.stdout.split("\n") if line.strip()]


def test_fakd_memory_linear_vs_quadratic():
    """Peak resident memory (MB above the start) at HW = 2304, 5184, 9216: the reference holds [HW, HW]
    affinities (quadratic: 340 MB a matrix at the largest size); the fused path only O(C HW) (0.6 MB)."""
    require("cpu")
    ref = _peaks("torch")
    fused = _peaks("cpu")
    print("reference", ref, "fused", fused)
    assert ref[2][1] - ref[1][1] > 300, "the reference grows with HW^2"
    assert fused[2][1] < 0.05 * ref[2][1], "the fused path stays O(C HW)"


def test_distill_command_end_to_end(tmp_path):
    from mdrn_fast.cli import main
    from mdrn_fast.weights_file import load_weights, save_weights

    folder = random_gray_pngs(tmp_path / "imgs", 2, (32, 32))
    teacher = save_weights(tmp_path / "t.safetensors", MDRN(channels=12, blocks=4, backend="torch"), preset="t")
    common = ["--train-set", str(folder), "--val-set", str(folder), "--val-images", "1", "--patch", "16",
              "--batch", "2", "--steps", "3", "--workers", "0", "--backend", "torch", "--preset", "mdrn-tiny",
              "--overrides", '{"channels": 8, "blocks": 2}']
    for strategy in ("A", "D"):
        out = tmp_path / f"s{strategy}"
        assert main(["distill", "--teacher", str(teacher), "--strategy", strategy, "--out", str(out)] + common) == 0
        student, meta = load_weights(out / "model.safetensors")
        assert student.channels == 8, "the exported model is the student alone, without adapters"


@pytest.mark.parametrize("backend", FUSED)
@pytest.mark.parametrize("kind", ["l1", "l2", "at", "fakd"])
def test_float64_matches_the_reference(backend, kind):
    """float64 features are computed in float64 by the fused backends (no float32 step in between), or refused."""
    require(backend)
    if (f"distill_{kind}", backend) not in _IMPLS:
        pytest.skip(f"{kind} has no fused {backend} kernel")
    dev = device_for(backend)
    fs = torch.randn(2, 6, 9, 7, dtype=torch.float64, device=dev, requires_grad=True)
    ft = torch.randn(2, 6 if kind in ("l1", "l2") else 5, 9, 7, dtype=torch.float64, device=dev, requires_grad=True)
    if (kind, backend) == ("fakd", "triton"):  # float32 tile GEMMs: refused, not silently rounded
        with pytest.raises(TypeError, match="float32"):
            feature_loss(fs, ft, kind=kind, backend=backend)
        return
    got = feature_loss(fs, ft, kind=kind, backend=backend)
    fs64, ft64 = (t.detach().cpu().requires_grad_() for t in (fs, ft))
    ref = REFERENCE[kind](fs64, ft64)
    assert_close(got, ref, 1e-12, 1e-10, f"{kind} value")
    for a, e, name in zip(torch.autograd.grad(got, (fs, ft)), torch.autograd.grad(ref, (fs64, ft64)), "st"):
        assert_close(a, e, 1e-12, 1e-9, f"{kind} grad f{name}")


def test_a_resumed_distillation_keeps_its_objective(tmp_path, capsys):
    """The HMDS settings travel in the checkpoint: a resume without them continues the same objective, and a
    flag that would change it is refused in one line."""
    from mdrn_fast.cli import main
    from mdrn_fast.weights_file import save_weights

    folder = random_gray_pngs(tmp_path / "imgs", 2, (32, 32))
    teacher = str(save_weights(tmp_path / "t.safetensors", MDRN(channels=12, blocks=4, backend="torch"), preset="t"))
    common = ["--train-set", str(folder), "--val-images", "0", "--patch", "16", "--batch", "2", "--workers", "0",
              "--backend", "torch", "--preset", "mdrn-tiny", "--overrides", '{"channels": 8, "blocks": 2}']
    out = str(tmp_path / "run")
    assert main(["distill", "--teacher", teacher, "--strategy", "D", "--loss", "at", "--weight", "0.5",
                 "--sigma-teacher", "25", "--steps", "2", "--out", out] + common) == 0
    capsys.readouterr()
    assert main(["distill", "--teacher", teacher, "--resume", out, "--steps", "3"]) == 0
    assert "HMDS-D:" in capsys.readouterr().out
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert json.loads(state["objective_settings"]) == dict(strategy="D", loss="at", weight=0.5, sigma_teacher=25.0)
    assert main(["distill", "--teacher", teacher, "--resume", out, "--steps", "4", "--strategy", "A"]) == 2
    err = capsys.readouterr().err
    assert "the run was distilled with --strategy D, not A" in err and err.count("\n") == 1, err
