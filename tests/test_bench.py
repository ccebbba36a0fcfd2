"""CI smoke test of bench/speed.py: a small CPU run writes well-formed JSON, markdown and a plot."""
import json
import subprocess
import sys
from pathlib import Path

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
