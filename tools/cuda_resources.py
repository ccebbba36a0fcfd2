"""Registers, shared memory and spills of every CUDA kernel of csrc/cuda, per architecture, as ptxas reports them.

Compiles each .cu file as the build does (same flags and includes; no GPU needed) with ``--resource-usage`` for
every architecture asked for, prints one table row per kernel and exits with 1 when any kernel spills (spill
stores or loads: a kernel that spills goes to local memory on every use of those registers). A stack frame
without spills (a small local array) is reported, not failed.

    python tools/cuda_resources.py                     # sm_80 and sm_90, as MDRN_FAST_CUDA_ARCHS defaults
    python tools/cuda_resources.py --archs 9.0 --json resources.json
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENTRY = re.compile(r"Compiling entry function '(?P<name>[^']+)' for '(?P<arch>sm_\d+)'")
FRAME = re.compile(r"(?P<stack>\d+) bytes stack frame, (?P<stores>\d+) bytes spill stores, (?P<loads>\d+) bytes spill loads")
USED = re.compile(r"Used (?P<regs>\d+) registers")
SMEM = re.compile(r"(?P<smem>\d+) bytes smem")


def nvcc_path() -> str | None:
    home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    for candidate in ([os.path.join(home, "bin", "nvcc")] if home else []) + ["/usr/local/cuda/bin/nvcc"]:
        if os.path.exists(candidate):
            return candidate
    return shutil.which("nvcc")


def compile_command(nvcc: str, source: Path, archs: list[str], out: Path) -> list[str]:
    from torch.utils import cpp_extension

    includes = cpp_extension.include_paths(device_type="cuda") + [sysconfig.get_paths()["include"]]
    gencode = [f"-gencode=arch=compute_{a.replace('.', '')},code=sm_{a.replace('.', '')}" for a in archs]
    abi = f"-D_GLIBCXX_USE_CXX11_ABI={int(getattr(__import__('torch')._C, '_GLIBCXX_USE_CXX11_ABI', True))}"
    return [nvcc, "-c", str(source), "-o", str(out), "-std=c++20", "-O3", "-lineinfo", "--expt-relaxed-constexpr",
            *cpp_extension.COMMON_NVCC_FLAGS, "-DWITH_CUDA", "-DTORCH_EXTENSION_NAME=_C", abi, "--resource-usage",
            "-Xcompiler", "-fPIC", *gencode, *[f"-I{p}" for p in includes]]


def parse(text: str, source: str) -> list[dict]:
    """One row per (kernel, arch) from ptxas's report."""
    rows, row = [], None
    for line in text.splitlines():
        if m := ENTRY.search(line):
            row = dict(source=source, kernel=m["name"], arch=m["arch"], regs=0, smem=0, stack=0, spill_stores=0,
                       spill_loads=0)
            rows.append(row)
        elif row is not None and (m := FRAME.search(line)):
            row.update(stack=int(m["stack"]), spill_stores=int(m["stores"]), spill_loads=int(m["loads"]))
        elif row is not None and (m := USED.search(line)):
            row["regs"] = int(m["regs"])
            if s := SMEM.search(line):
                row["smem"] = int(s["smem"])
    return rows


def demangle(names: list[str]) -> dict[str, str]:
    tool = shutil.which("c++filt")
    if not tool:
        return {n: n for n in names}
    out = subprocess.run([tool], input="\n".join(names), capture_output=True, text=True).stdout.splitlines()
    def short(d: str) -> str:  # "void mdrn_fast::cuda::(anonymous namespace)::k<float>(float const*, ...)" -> "k<float>"
        d = d.replace("(anonymous namespace)::", "").replace("mdrn_fast::cuda::", "").removeprefix("void ")
        return d.split("(")[0]

    return {n: short(d) for n, d in zip(names, out)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", default=os.environ.get("MDRN_FAST_CUDA_ARCHS", "8.0;9.0"),
                    help="';'-separated, as MDRN_FAST_CUDA_ARCHS (default: %(default)s)")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args(argv)
    nvcc = nvcc_path()
    if nvcc is None:
        print("no nvcc found (set CUDA_HOME): nothing to report", file=sys.stderr)
        return 2
    archs = [a for a in args.archs.replace(",", ";").split(";") if a]
    sources = sorted((ROOT / "csrc" / "cuda").glob("*.cu"))
    rows, failed = [], []
    with tempfile.TemporaryDirectory() as tmp, concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        def build(source: Path):
            cmd = compile_command(nvcc, source, archs, Path(tmp) / f"{source.stem}.o")
            return source, subprocess.run(cmd, capture_output=True, text=True)

        for source, proc in pool.map(build, sources):
            if proc.returncode != 0:
                failed.append(f"{source.name}: {proc.stderr.strip()[-2000:]}")
            rows += parse(proc.stdout + proc.stderr, source.name)
    names = demangle(sorted({r["kernel"] for r in rows}))
    print(f"| source | kernel | arch | registers | smem bytes | stack bytes | spill stores | spill loads |")
    print("|---|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (r["source"], names[r["kernel"]], r["arch"])):
        print(f"| {r['source']} | {names[r['kernel']]} | {r['arch']} | {r['regs']} | {r['smem']} | {r['stack']} | "
              f"{r['spill_stores']} | {r['spill_loads']} |")
    spilling = [r for r in rows if r["spill_stores"] or r["spill_loads"]]
    if args.json:
        Path(args.json).write_text(json.dumps([r | {"name": names[r["kernel"]]} for r in rows], indent=1))
    print(f"\n{len(rows)} kernel builds ({len(sources)} sources x {', '.join(archs)}): {len(spilling)} spill"
          + (f"; {len(failed)} source(s) failed to compile" if failed else ""))
    for r in spilling:
        print(f"SPILL: {r['source']} {names[r['kernel']]} {r['arch']}: {r['stack']} bytes stack, "
              f"{r['spill_stores']} B stores, {r['spill_loads']} B loads", file=sys.stderr)
    for f in failed:
        print(f"COMPILE FAILED: {f}", file=sys.stderr)
    return 1 if spilling or failed or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
