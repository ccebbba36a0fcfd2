"""Builds mdrn_fast._C: C++ CPU kernels always, CUDA kernels when torch has CUDA and nvcc is found.

Environment:
  MDRN_FAST_CUDA_ARCHS  CUDA architectures, ";"-separated (default "8.0;9.0"; e.g. "9.0" for H100 only)
  MDRN_FAST_NO_CUDA=1   skip the CUDA sources (fast local iteration)
  MAX_JOBS              parallel compile jobs (default: bounded by cores and by memory, ~3 GiB a job)
  DEBUG=1               -O0 -g
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent
# torch guesses CUDA_HOME from the nvcc on PATH, which is wrong when that nvcc is a wrapper script
# (/usr/local/bin/nvcc -> -L/usr/local/lib, no libcudart): prefer the standard toolkit location.
if not (os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")) and os.path.exists("/usr/local/cuda/bin/nvcc"):
    os.environ["CUDA_HOME"] = "/usr/local/cuda"
try:
    import torch
    from torch.utils import cpp_extension
except ImportError:
    sys.exit(
        "mdrn-fast: building the extension needs torch, and this build environment has none.\n"
        "Install torch first, then build against it without isolation:\n"
        "    pip install torch && pip install --no-build-isolation -e .\n"
    )


def env_flag(name: str) -> bool:
    return os.environ.get(name, "0").lower() not in ("", "0", "false", "no")


def nvcc_version():
    nvcc = os.path.join(cpp_extension.CUDA_HOME, "bin", "nvcc") if cpp_extension.CUDA_HOME else shutil.which("nvcc")
    if not nvcc or not os.path.exists(nvcc):
        return None
    out = subprocess.run([nvcc, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"release (\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else None


def want_cuda() -> tuple[bool, str]:
    if env_flag("MDRN_FAST_NO_CUDA"):
        return False, "MDRN_FAST_NO_CUDA is set"
    if torch.version.cuda is None:
        return False, f"torch {torch.__version__} has no CUDA"
    version = nvcc_version()
    if version is None:
        return False, "nvcc not found (set CUDA_HOME)"
    if version < (11, 8):
        return False, f"nvcc {version} is older than 11.8"
    return True, f"nvcc {version[0]}.{version[1]}"


def default_jobs() -> int:
    try:
        mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem_gib = 8
    return max(1, min(os.cpu_count() or 1, int(mem_gib // 3)))


def extension():
    use_cuda, why = want_cuda()
    debug = env_flag("DEBUG")
    opt = ["-O0", "-g"] if debug else ["-O3"]
    # torch adds the -std its headers need; no pass reads errno, and without it sqrt vectorizes
    cxx = opt + ["-fopenmp", "-fno-math-errno"]
    sources = sorted(glob.glob("csrc/*.cpp") + glob.glob("csrc/cpu/*.cpp"))
    archs = os.environ.get("MDRN_FAST_CUDA_ARCHS", "8.0;9.0")
    print(f"mdrn-fast: CUDA kernels {'ON' if use_cuda else 'OFF'} ({why})" + (f", archs {archs}" if use_cuda else ""))
    os.environ.setdefault("MAX_JOBS", str(default_jobs()))
    info = {"torch": torch.__version__, "cuda": torch.version.cuda if use_cuda else None,
            "cuda_archs": archs if use_cuda else None, "debug": debug}
    (ROOT / "mdrn_fast" / "_build_info.json").write_text(json.dumps(info, indent=1) + "\n")
    if not use_cuda:
        return cpp_extension.CppExtension("mdrn_fast._C", sources, extra_compile_args={"cxx": cxx},
                                          extra_link_args=["-fopenmp"])
    # torch reads the arch list from this variable; without it, a machine with no GPU builds for every arch
    os.environ["TORCH_CUDA_ARCH_LIST"] = archs
    nvcc = opt + ["-lineinfo", "--expt-relaxed-constexpr"]
    return cpp_extension.CUDAExtension(
        "mdrn_fast._C", sources + sorted(glob.glob("csrc/cuda/*.cu")),
        extra_compile_args={"cxx": cxx + ["-DWITH_CUDA"], "nvcc": nvcc + ["-DWITH_CUDA"]},
        extra_link_args=["-fopenmp"],
    )


setup(
    packages=find_packages(include=["mdrn_fast", "mdrn_fast.*"]) + ["mdrn_fast.kernels"],
    package_dir={"mdrn_fast.kernels": "kernels"},
    package_data={"mdrn_fast": ["_build_info.json", "datasets.json", "noise_estimator.json", "weights/*.safetensors", "weights/*.json"]},
    ext_modules=[extension()],
    cmdclass={"build_ext": cpp_extension.BuildExtension.with_options(use_ninja=True)},
)
