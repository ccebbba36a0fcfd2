"""tools/cuda_resources.py reads ptxas's report right: one row per kernel and architecture, and spills fail it.
(CI runs the tool itself on every CUDA source: .ci/run.)"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tools"))
import cuda_resources  # noqa: E402

REPORT = """ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function '_ZN9mdrn_fast4cuda12_GLOBAL__N_113demo_kernelIfEEvPKT_PS3_l' for 'sm_90'
ptxas info    : Function properties for _ZN9mdrn_fast4cuda12_GLOBAL__N_113demo_kernelIfEEvPKT_PS3_l
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 30 registers, used 1 barriers, 1024 bytes smem, 384 bytes cmem[0]
ptxas info    : Compiling entry function '_ZN9mdrn_fast4cuda12_GLOBAL__N_113demo_kernelIdEEvPKT_PS3_l' for 'sm_80'
ptxas info    : Function properties for _ZN9mdrn_fast4cuda12_GLOBAL__N_113demo_kernelIdEEvPKT_PS3_l
    48 bytes stack frame, 40 bytes spill stores, 44 bytes spill loads
ptxas info    : Used 255 registers, used 0 barriers, 384 bytes cmem[0]
"""


def test_the_report_is_parsed_per_kernel_and_arch():
    rows = cuda_resources.parse(REPORT, "demo.cu")
    assert [(r["arch"], r["regs"], r["smem"], r["stack"], r["spill_stores"], r["spill_loads"]) for r in rows] == [
        ("sm_90", 30, 1024, 0, 0, 0), ("sm_80", 255, 0, 48, 40, 44)]
    names = cuda_resources.demangle([r["kernel"] for r in rows])
    assert set(names.values()) <= {"demo_kernel<float>", "demo_kernel<double>", *names}  # c++filt may be absent


def test_the_build_flags_follow_the_archs_asked_for():
    cmd = cuda_resources.compile_command("nvcc", Path("x.cu"), ["8.0", "9.0"], Path("x.o"))
    assert "-gencode=arch=compute_80,code=sm_80" in cmd and "-gencode=arch=compute_90,code=sm_90" in cmd
    assert "--resource-usage" in cmd and "-DWITH_CUDA" in cmd
