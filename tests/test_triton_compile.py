"""Every Triton kernel compiles for the GPUs this project targets, on this machine without one: the launchers
run as on an H100 (sm_90) and an A100 (sm_80), each launch only compiles, and the check fails on compile
errors, shared memory over the target's, grids over CUDA's limits, and register spills
(tools/triton_compile_check.py, which prints a per-kernel table of registers, spills and shared memory)."""
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import HAS_GPU

ROOT = Path(__file__).parents[1]


@pytest.mark.skipif(HAS_GPU, reason="on a GPU the kernels compile for real in the other tests")
def test_every_triton_kernel_compiles_for_sm90_and_sm80():
    """Both targets at once, one process each (compiling is single-threaded): sm_90 with every case and
    autotune config, sm_80 with the quick set."""
    pytest.importorskip("triton")
    tool = str(ROOT / "tools" / "triton_compile_check.py")
    procs = {arch: subprocess.Popen([sys.executable, tool, "--arch", str(arch), *extra], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
             for arch, extra in ((90, []), (80, ["--quick"]))}
    results = {arch: p.communicate(timeout=2400) for arch, p in procs.items()}
    for arch, (out, _) in results.items():
        print(out)
    for arch, (out, err) in results.items():
        assert procs[arch].returncode == 0, f"sm_{arch}:\n" + out[-6000:] + err[-3000:]
