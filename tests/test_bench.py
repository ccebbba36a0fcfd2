"""CI smoke test of bench/speed.py: a small CPU run writes well-formed JSON, markdown and a plot."""
import argparse
import json
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

import mdrn_fast

ROOT = Path(__file__).parents[1]


def test_quick_cpu_benchmark_writes_results(tmp_path):
    cmd = [sys.executable, str(ROOT / "bench" / "speed.py"), "--device", "cpu", "--quick", "--only", "op",
           "--providers", "torch,cpu,triton", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| degrade_s2 fwd" in proc.stdout
    (js,) = tmp_path.glob("*.json")
    result = json.loads(js.read_text())
    measured = [r for r in result["rows"] if "skipped" not in r]
    assert {r["provider"] for r in measured} >= {"torch"}
    for r in measured:
        assert r["ms"] > 0 and r["floor_ms"] > 0 and r["flops"] >= 0 and r["bytes"] > 0
    triton_rows = [r for r in result["rows"] if r["provider"] == "triton"]
    assert triton_rows and all("interpreter" in r["skipped"] or "GPU" in r["skipped"] for r in triton_rows)
    assert js.with_suffix(".md").read_text().startswith("# mdrn_fast speed")
    assert js.with_suffix(".png").stat().st_size > 1000
    assert not list(tmp_path.glob("*.rows.jsonl")), "the row-by-row file is removed once the results are written"


def _bench_modules():
    sys.path.insert(0, str(ROOT / "bench"))
    import speed
    import workloads

    return speed, workloads


def test_providers_that_cannot_run_on_the_device_are_skipped_with_the_reason():
    """On a GPU run the cpu provider must skip (and the cuda provider on a CPU run), never fail mid-timing."""
    import torch

    _, workloads = _bench_modules()
    with pytest.raises(workloads.Skip, match="cpu backend runs on CPU tensors"):
        workloads._check("cpu", torch.device("cuda"), "op")
    with pytest.raises(workloads.Skip):
        workloads._check("cuda", torch.device("cpu"), "op")
    with pytest.raises(workloads.Skip, match="whole model"):
        workloads._check("torch-cl", torch.device("cpu"), "op")


def test_a_failing_provider_costs_only_its_own_row():
    """An error inside one provider's timing becomes an error row; the run goes on and reports every row as
    it finishes (what gpu_check.sh relies on to keep partial results)."""
    import torch

    speed, workloads = _bench_modules()

    def build(provider):
        if provider == "triton":
            raise RuntimeError("kernel exploded")
        if provider == "cuda":
            raise mdrn_fast.BackendError("backend 'cuda' is not available")
        return lambda: torch.ones(8).sum()

    work = workloads.Workload("toy", "op", build, 64.0)
    args = argparse.Namespace(device="cpu", providers="torch,triton,cuda,cpu", quick=True, only=None,
                              fp32_precision="ieee")
    seen = []
    peaks = dict(name="test", flops_bf16=1e12, flops_tf32=1e12, flops_fp32=1e12, bytes_per_s=1e10, source="test")
    with mock.patch.object(speed, "select_workloads", return_value=[work]):
        result = speed.run(args, peaks, seen.append)
    assert [r["provider"] for r in seen] == ["torch", "triton", "cuda", "cpu"]
    by = {r["provider"]: r for r in result["rows"]}
    assert by["torch"]["ms"] > 0 and by["cpu"]["ms"] > 0
    assert "kernel exploded" in by["triton"]["error"]
    assert "not available" in by["cuda"]["skipped"]
    assert by["cpu"]["vs_best_peer"] == pytest.approx(by["torch"]["ms"] / by["cpu"]["ms"])  # torch: the only peer
    md = speed.markdown(result)
    assert "Failed here:" in md and "kernel exploded" in md


def test_a_workload_no_provider_can_run_gives_skipped_rows_only():
    speed, workloads = _bench_modules()

    def build(provider):
        raise workloads.Skip("not here")

    args = argparse.Namespace(device="cpu", providers="torch,cpu", quick=True, only=None, fp32_precision="ieee")
    peaks = dict(name="test", flops_bf16=1e12, flops_tf32=1e12, flops_fp32=1e12, bytes_per_s=1e10, source="test")
    with mock.patch.object(speed, "select_workloads", return_value=[workloads.Workload("toy", "op", build, 64.0)]):
        result = speed.run(args, peaks)
    assert [r["skipped"] for r in result["rows"]] == ["not here", "not here"]


def test_gpu_check_runs_its_stages_and_records_them(tmp_path):
    """The one-call GPU script in rehearsal mode (info stage only, here): python3, results in $OUT, each
    stage's status and duration in stages.txt; and it keeps the properties a lent device needs."""
    script = ROOT / "bench" / "gpu_check.sh"
    env = dict(__import__("os").environ, OUT=str(tmp_path), STAGES="info")
    proc = subprocess.run(["bash", str(script), "--rehearse"], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "== info: ok in" in (tmp_path / "stages.txt").read_text()
    assert "torch" in (tmp_path / "info.txt").read_text()
    text = script.read_text()
    pytest_line = next(line for line in text.splitlines() if "-m pytest" in line)
    assert " -x" not in pytest_line and "python3 -m pytest -n" in pytest_line and "${TESTS:-tests}" in pytest_line, \
        "all tests (distillation included), in parallel, without stopping at the first failure"
    assert "MDRN_FAST_TRITON_AUTOTUNE" in text and "timeout" in text
