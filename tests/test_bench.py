"""CI checks of the benchmark and of the GPU call's Python parts: a tiny CPU run of bench/speed.py with every
provider writes well-formed JSON, markdown, a plot and a profile; the design floors are what bench/README.md
says; the timing cuts a slow row off; the GPU scripts keep the properties a lent device needs."""
import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest
import torch

import mdrn_fast
from helpers import require

ROOT = Path(__file__).parents[1]


def _bench_modules():
    sys.path.insert(0, str(ROOT / "bench"))
    import floors
    import profile_table
    import speed
    import timing
    import workloads

    return argparse.Namespace(speed=speed, workloads=workloads, floors=floors, profile_table=profile_table,
                              timing=timing)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny CPU run of every group and provider (compile through aot_eager: the wiring, no code generation)."""
    out = tmp_path_factory.mktemp("bench")
    cmd = [sys.executable, str(ROOT / "bench" / "speed.py"), "--device", "cpu", "--tiny", "--compile-backend",
           "aot_eager", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (js,) = out.glob("*.json")
    return proc, out, js, json.loads(js.read_text())


def test_tiny_cpu_benchmark_writes_results(tiny_run):
    proc, out, js, result = tiny_run
    assert "| degrade_s2 fwd" in proc.stdout
    measured = [r for r in result["rows"] if "ms" in r]
    assert {r["provider"] for r in measured} >= {"torch", "compile"}
    for r in measured:
        assert r["ms"] > 0 and r["floor_ms"] > 0 and r["flops"] >= 0 and r["bytes"] > 0
        assert r["samples"] >= 1 and r["first_s"] >= 0 and r["warm_s"] >= 0
    triton_rows = [r for r in result["rows"] if r["provider"] == "triton"]
    assert triton_rows and all("interpreter" in r["skipped"] or "GPU" in r["skipped"] for r in triton_rows)
    assert js.with_suffix(".md").read_text().startswith("# mdrn_fast speed")
    assert js.with_suffix(".png").stat().st_size > 1000
    assert not list(out.glob("*.rows.jsonl")), "the row-by-row file is removed once the results are written"


def test_tiny_run_covers_every_group_and_provider_in_order(tiny_run):
    _, out, js, result = tiny_run
    b = _bench_modules()
    rows = result["rows"]
    groups = [r["group"] for r in rows]
    assert list(dict.fromkeys(groups)) == list(b.workloads.GROUPS), "model rows first, then layer, op, distill"
    model = [r["workload"] for r in rows if r["group"] == "model"]
    assert model.index(next(w for w in model if " train " in w)) > max(i for i, w in enumerate(model) if " infer " in w)
    for group in b.workloads.GROUPS:
        assert {r["provider"] for r in rows if r["group"] == group} == set(b.workloads.PROVIDERS)
        assert any("ms" in r for r in rows if r["group"] == group and r["provider"] == "torch")
    for r in rows:
        assert "ms" in r or r.get("skipped") or r.get("error") or r.get("cut"), r
        assert "error" not in r, r
        if r["provider"].endswith("-graph"):
            assert "CUDA graphs" in r["skipped"]
    layer_fused = [r for r in rows if r["group"] == "layer" and r["provider"] == "cpu"]
    if not hasattr(mdrn_fast.ops, "conv3x3"):
        assert all("conv3x3" in r["skipped"] for r in layer_fused)
    md = js.with_suffix(".md").read_text()
    assert "% compute" in md and "% layer" in md and "first + warm-up s" in md
    assert "## Design floors" in md and "## Summary" in md and "vs best compile" in md
    infer = next(r for r in rows if r["workload"].startswith("mdrn-base infer") and r["provider"] == "torch")
    assert infer["layer_floor_ms"] > 0 and infer["pct_of_layer_floor"] > 0
    assert set(infer["designs"]) == set(b.floors.DESIGNS)


def test_profile_is_written_for_the_model_and_layer_rows(tiny_run):
    _, out, js, _ = tiny_run
    text = Path(f"{js.with_suffix('')}.profile.md").read_text()
    assert text.startswith("# Where the time goes")
    assert "### mdrn-base infer 1x1x32x32 fp32: torch" in text and "### conv3x3+bias+lrelu" in text
    assert "| aten::" in text and "self CPU time per op" in text
    assert "mdrn-base train" not in text, "train rows are profiled with --profile model only"


def test_profile_table_of_a_closure():
    b = _bench_modules()
    x, w = torch.randn(1, 4, 16, 16), torch.randn(4, 4, 3, 3)
    prof = b.profile_table.top_kernels(lambda: torch.nn.functional.conv2d(x, w, padding=1).relu(), torch.device("cpu"))
    assert prof["rows"] and prof["per_call_ms"] > 0
    assert sum(r["share"] for r in prof["rows"]) <= 1.0 + 1e-9
    text = b.profile_table.section("toy", "torch", 2 * prof["per_call_ms"], prof)
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| kernel | calls |") and len(lines) == 1 + len(prof["rows"])
    assert "50% of it" in text
    assert "no profile: boom" in b.profile_table.section("toy", "torch", None, None, "boom")


def test_design_floors_are_the_counts_the_readme_gives():
    """mdrn-base's maps per design, inference and train step, as bench/README.md states them; the designs rank as
    they should."""
    b = _bench_modules()
    cfg = dict(channels=32, blocks=6, scales=[2, 4], in_channels=1)
    infer = {k: m for k, (m, _) in b.floors.design_floors(cfg, (16, 1, 256, 256), 2).items()}
    train = {k: m for k, (m, _) in b.floors.design_floors(cfg, (16, 1, 256, 256), 2, train=True).items()}
    assert [round(infer[k], 1) for k in b.floors.DESIGNS] == [115.6, 101.6, 67.6, 49.8, 34.1]
    assert [round(train[k], 1) for k in b.floors.DESIGNS] == [318.7, 277.7, 198.7, 132.5, 93.2]
    readme = (ROOT / "bench" / "README.md").read_text()
    for k in b.floors.DESIGNS:
        assert f"| {b.floors.DESIGNS[k][0]} | {infer[k]:.1f} | {train[k]:.1f} |" in readme, k
    _, bytes_ = b.floors.design_floors(cfg, (16, 1, 256, 256), 2)["layer"]
    assert bytes_ == pytest.approx(infer["layer"] * 16 * 32 * 256 * 256 * 2)
    one_block = dict(cfg, blocks=1)
    assert b.floors.design_floors(one_block, (1, 1, 8, 8), 4)["one-per-block"][0] > 0  # no block to chain


def test_timing_cuts_a_slow_row_off_with_what_it_measured():
    b = _bench_modules()
    slow = b.timing.Budget(min_samples=50, max_samples=100, seconds=0.05, first_call_s=10)
    out = b.timing.time_cpu({"slow": lambda: time.sleep(0.01), "fast": lambda: None}, slow)
    assert 1 <= out["slow"]["samples"] < 50 and "samples in the row's" in out["slow"]["cut"]

    def compile_forever():
        while True:  # Python code, as inductor's: the alarm stops it
            pass

    with pytest.raises(b.timing.FirstCallTooSlow, match="first calls over"):
        b.timing.first_calls(compile_forever, "cpu", 0.2)


def test_providers_that_cannot_run_on_the_device_are_skipped_with_the_reason():
    """On a GPU run the cpu provider must skip (and the cuda provider on a CPU run), never fail mid-timing."""
    workloads = _bench_modules().workloads
    with pytest.raises(workloads.Skip, match="cpu backend runs on CPU tensors"):
        workloads._check("cpu", torch.device("cuda"), "op")
    with pytest.raises(workloads.Skip):
        workloads._check("cuda", torch.device("cpu"), "op")
    with pytest.raises(workloads.Skip, match="whole model"):
        workloads._check("torch-cl", torch.device("cpu"), "op")
    workloads._check("torch-graph", torch.device("cuda"), "model")  # training steps are captured too
    with pytest.raises(workloads.Skip, match="the model"):
        workloads._check("torch-graph", torch.device("cuda"), "op")


def test_a_new_op_gets_rows_and_a_broken_one_only_costs_its_own():
    """The op rows come from mdrn_fast.ops.OPS: an op added there is benchmarked without editing the bench, and
    one whose example fails gives error rows instead of stopping the run."""
    workloads = _bench_modules().workloads
    real = mdrn_fast.ops

    def example(op, shape, scale=2, generator=None):
        if op == "broken_op":
            raise RuntimeError("no example")
        return real.example(op, shape, scale, generator)

    fake = argparse.Namespace(OPS=real.OPS + ("broken_op",), example=example,
                              **{op: getattr(real, op) for op in real.OPS})
    with mock.patch.object(workloads, "ops", fake):
        names = workloads.op_names()
        work = workloads.op_workloads(1, 4, 8, torch.device("cpu"), modes=("fwd",))
    assert "broken_op" in names and "degrade_s4" in names
    broken = next(w for w in work if w.name.startswith("broken_op"))
    with pytest.raises(RuntimeError, match="no example"):
        broken.build("torch")


def test_a_failing_provider_costs_only_its_own_row():
    """An error inside one provider's timing becomes an error row; the run goes on and reports every row as
    it finishes (what gpu_check.sh relies on to keep partial results)."""
    b = _bench_modules()
    speed, workloads = b.speed, b.workloads

    def build(provider):
        if provider == "triton":
            raise RuntimeError("kernel exploded")
        if provider == "cuda":
            raise mdrn_fast.BackendError("backend 'cuda' is not available")
        return lambda: torch.ones(8).sum()

    work = workloads.Workload("toy", "op", build, 64.0)
    args = argparse.Namespace(device="cpu", providers="torch,triton,cuda,cpu", quick=True, only=None,
                              fp32_precision="ieee", tiny=True)
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
    b = _bench_modules()

    def build(provider):
        raise b.workloads.Skip("not here")

    args = argparse.Namespace(device="cpu", providers="torch,cpu", quick=True, only=None, fp32_precision="ieee")
    peaks = dict(name="test", flops_bf16=1e12, flops_tf32=1e12, flops_fp32=1e12, bytes_per_s=1e10, source="test")
    work = b.workloads.Workload("toy", "op", build, 64.0)
    with mock.patch.object(b.speed, "select_workloads", return_value=[work]):
        result = b.speed.run(args, peaks)
    assert [r["skipped"] for r in result["rows"]] == ["not here", "not here"]


def test_a_run_past_its_budget_lists_what_it_did_not_reach():
    b = _bench_modules()
    work = [b.workloads.Workload(f"toy{i}", "op", lambda p: (lambda: None), 64.0) for i in range(2)]
    args = argparse.Namespace(device="cpu", providers="torch", quick=True, only=None, fp32_precision="ieee",
                              tiny=True, budget_s=-1.0)
    peaks = dict(name="test", flops_bf16=1e12, flops_tf32=1e12, flops_fp32=1e12, bytes_per_s=1e10, source="test")
    with mock.patch.object(b.speed, "select_workloads", return_value=work):
        result = b.speed.run(args, peaks)
    assert result["not_reached"] == ["toy0", "toy1"] and "Not reached" in b.speed.markdown(result)


@pytest.mark.gpu
def test_graph_captured_inference_replays_the_eager_result():
    """What the <backend>-graph providers time: a CUDA graph of the model's inference, warmed up before capture."""
    _bench_modules()
    import graphs

    model = mdrn_fast.mdrn("mdrn-tiny", backend="torch").cuda().eval()
    y = torch.rand(2, 1, 32, 32, device="cuda")

    def step():
        with torch.no_grad():
            return model(y)

    replay = graphs.captured(step)
    first = replay().clone()
    y.copy_(torch.rand_like(y))  # a static input buffer: the replay reads the new values
    torch.testing.assert_close(replay(), step())
    assert not torch.equal(first, step())


def _gpu_check(tmp_path, **env):
    script = ROOT / "bench" / "gpu_check.sh"
    full = dict(os.environ, OUT=str(tmp_path / "out"), BENCH_OUT=str(tmp_path / "bench"), **env)
    return subprocess.run(["bash", str(script), "--rehearse"], capture_output=True, text=True, timeout=300, env=full)


def test_gpu_check_runs_its_stages_and_records_them(tmp_path):
    """The one-call GPU script in rehearsal mode (its info and bench stages, a tiny bench): python3, results in
    $OUT, the plan first, each stage's status and duration in stages.txt, the benchmark's tables bundled; and it
    keeps the properties a lent device needs."""
    proc = _gpu_check(tmp_path, STAGES="info bench", BENCH_ARGS="--only layer --compile-backend aot_eager")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out"
    stages = (out / "stages.txt").read_text()
    assert "== info: ok in" in stages and "== bench: ok in" in stages
    assert proc.stdout.startswith("== plan:") and re.search(r"bench +\d+s", proc.stdout)
    assert "torch" in (out / "info.txt").read_text() and "mdrn_fast from" in (out / "info.txt").read_text()
    listing = subprocess.run(["tar", "-tf", str(out / "bench.tar")], capture_output=True, text=True).stdout
    assert ".md" in listing and ".json" in listing and ".profile.md" in listing
    assert "## Summary" in proc.stdout, "the call's reply ends with the benchmark's summary"
    assert len(list(out.iterdir())) <= 8, "a device call brings back 8 files"
    text = (ROOT / "bench" / "gpu_check.sh").read_text()
    pytest_line = next(line for line in text.splitlines() if "-m pytest" in line)
    assert " -x" not in pytest_line and "python3 -m pytest -n" in pytest_line and "${TESTS:-tests}" in pytest_line, \
        "all tests (distillation included), in parallel, without stopping at the first failure"
    assert "MDRN_FAST_TRITON_AUTOTUNE" in text and "timeout" in text
    assert 'export PYTHONPATH="$PWD' in text, "the tree imports even when the build failed"
    assert "MDRN_FAST_CUDA_ARCHS=\"${MDRN_FAST_CUDA_ARCHS:-9.0}\"" in text, "one architecture, rehearsal included"


def test_gpu_scripts_parse_and_order_their_stages():
    for script in (ROOT / "bench").glob("*.sh"):
        proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{script.name}: {proc.stderr}"
    session = (ROOT / "bench" / "gpu_session.sh").read_text()
    assert 'STAGES="${STAGES:-info build test bench train}"' in session, "by value: training last, on what is left"


def test_the_tree_imports_without_a_build(tmp_path):
    """bench/pythonpath makes mdrn_fast.kernels importable from a plain PYTHONPATH (no editable install), so that
    the triton rows run when the build failed; an installed mapping, where there is one, still comes first."""
    import importlib.util

    shim = ROOT / "bench" / "pythonpath" / "sitecustomize.py"
    spec = importlib.util.spec_from_file_location("_bench_sitecustomize", shim)
    module = importlib.util.module_from_spec(spec)
    with mock.patch.object(sys, "meta_path", list(sys.meta_path)):
        spec.loader.exec_module(module)
        assert sys.meta_path[-1] is module._TreeKernels
    found = module._TreeKernels.find_spec("mdrn_fast.kernels")
    assert Path(found.origin).resolve() == (ROOT / "kernels" / "__init__.py").resolve()
    assert module._TreeKernels.find_spec("mdrn_fast.ops") is None
    code = "import mdrn_fast.kernels; print(mdrn_fast.kernels.__file__)"
    env = dict(os.environ, PYTHONPATH=f"{ROOT}:{ROOT / 'bench' / 'pythonpath'}")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).resolve() == (ROOT / "kernels" / "__init__.py").resolve()


def test_a_working_set_that_fits_a_cache_is_floored_by_its_own_copy_rate():
    """% of floor above 100% meant a floor that was too slow: a small op measured against the DRAM copy rate.
    The floor of a cache-sized op is now the time of a copy of its size (measured once per size)."""
    b = _bench_modules()
    peaks = dict(b.floors.device_peaks(torch.device("cpu")), bytes_per_s=1.0)  # a memory far slower than any cache
    nbytes = 4 << 20
    floor = b.floors.floor_seconds(0.0, nbytes, peaks, low_precision=False)
    assert floor == pytest.approx(nbytes / b.floors.working_set_rate(nbytes, "cpu"))
    assert floor < 1.0, "the working set's own copy rate, not the (here absurd) memory peak"
    assert b.floors.working_set_rate(nbytes, "cpu") == b.floors.working_set_rate(nbytes - 100, "cpu"), "per page"


@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["torch", "cuda", "triton"])
def test_graph_captured_training_step_matches_the_eager_one(backend):
    """What the <backend>-graph training rows and train_probe --graph on time: forward, backward and a capturable
    fused Adam replayed from one CUDA graph, the gradients written afresh each replay; the parameters after
    three replays equal three eager steps' (after the same warm-up)."""
    require(backend)
    _bench_modules()
    import graphs

    y = torch.rand(2, 1, 32, 32, device="cuda")

    def setup():
        torch.manual_seed(0)
        model = mdrn_fast.mdrn("mdrn-tiny", backend=backend).cuda().train()
        return model, torch.optim.Adam(model.parameters(), 1e-3, fused=True, capturable=True)

    def step_of(model, opt):
        def step():
            loss = (model(y) - y).abs().mean()
            loss.backward()
            opt.step()
            return loss
        return step

    model, opt = setup()
    replay = graphs.captured(step_of(model, opt), warmup=3, before_capture=lambda: model.zero_grad(set_to_none=True))
    for _ in range(3):  # the first call warms up 3 steps, captures and replays once
        replay()
    eager, eager_opt = setup()
    step = step_of(eager, eager_opt)
    for _ in range(3):  # the warm-up: gradients accumulate, as in captured()
        step()
    for _ in range(3):
        eager.zero_grad(set_to_none=True)
        step()
    torch.cuda.synchronize()
    for (name, p), q in zip(model.named_parameters(), eager.parameters()):
        torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-4, msg=name)
