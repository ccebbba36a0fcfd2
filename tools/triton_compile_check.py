"""Compile every Triton kernel of mdrn_fast for a real GPU target, on a machine without a GPU.

A stand-in Triton driver reports the target (sm_90 by default) as the current device. The launchers of
kernels/ then run as they would on that GPU (the same shapes, dtypes, flags, grids and autotune configs), but
each launch only compiles the kernel (Triton's warmup mode) and records its grid; every autotune config is
compiled where a case asks for it. For each compiled kernel the report gives registers, spills (``ptxas -v``,
the ptxas bundled with Triton) and shared memory, and the check fails on

  - a compile error (or a launcher error that is not a clear refusal of the dtype),
  - more shared memory than the target has (an autotune config may fail if another one of the same launch
    passes: Triton's autotuner skips configs that run out of resources),
  - a grid over CUDA's limits (x < 2^31, y and z <= 65535),
  - spills in a kernel that is not autotuned, or in every config of an autotuned launch, on sm_90 (the GPUs
    this project is tuned for; on other targets spills are listed as warnings),
  - a matrix kernel of TENSOR_CORE_KERNELS compiled for float16, bfloat16 or TF32 without a tensor-core
    instruction (``wgmma`` on sm_90, ``mma`` on sm_80) in its PTX.

The report also gives each kernel's tensor-core instruction counts and the CTAs per SM its registers, shared
memory and warps allow.

    python tools/triton_compile_check.py                 # sm_90, every case, every config
    python tools/triton_compile_check.py --arch 80 --quick
    python tools/triton_compile_check.py --json report.json

Inputs are CPU tensors: nothing runs on them but the launchers' own PyTorch work (allocations, small sums).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

os.environ.pop("TRITON_INTERPRET", None)  # a real compile, not the interpreter

import torch  # noqa: E402
import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.backends.driver import DriverBase  # noqa: E402
from triton.runtime import driver  # noqa: E402
from triton.runtime.autotuner import Autotuner  # noqa: E402
from triton.runtime.jit import JITFunction  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

SHARED_MEMORY = {80: 166912, 86: 101376, 89: 101376, 90: 232448}  # bytes per block, opt-in maximum
SM_SHARED_MEMORY = {80: 167936, 86: 102400, 89: 102400, 90: 233472}  # bytes per SM
SM_THREADS = {80: 2048, 86: 1536, 89: 1536, 90: 2048}
GRID_LIMITS = (2**31 - 1, 65535, 65535)
# kernels whose products must run on tensor cores in float16, bfloat16 and TF32 (the others' dots may upcast)
TENSOR_CORE_KERNELS = {"_conv_kernel", "_conv_weight_grad_kernel", "_block_tail_kernel", "_fuse_parts_kernel",
                       "_degrade_pair_kernel", "_gemm_kernel", "_weight_grad_kernel"}


class StandInDriver(DriverBase):
    """Just enough of a Triton driver to compile for ``arch`` with no GPU present."""

    def __init__(self, arch: int):
        self.arch = arch

    @classmethod
    def is_active(cls):
        return False

    def map_python_to_cpp_type(self, ty):
        raise NotImplementedError

    def get_current_target(self):
        return GPUTarget("cuda", self.arch, 32)

    def get_active_torch_device(self):
        return torch.device("cpu")

    def get_current_device(self):
        return 0

    def get_current_stream(self, device=None):
        return 0

    def get_device_interface(self):
        return torch.cuda

    def get_benchmarker(self):
        raise RuntimeError("the compile check never benchmarks")

    def get_empty_cache_for_benchmark(self):
        raise RuntimeError("the compile check never benchmarks")


@dataclass
class Launch:
    """One kernel launch the launchers asked for, with what compiling it gave."""
    case: str
    kernel: str
    config: str
    grid: tuple = ()
    autotuned: bool = False
    group: int = 0  # the launches of one autotuned call share a group
    shared: int | None = None
    registers: int | None = None
    spill_stores: int | None = None
    spill_loads: int | None = None
    warps: int | None = None
    wgmma: int | None = None  # tensor-core instructions in the PTX: Hopper's warpgroup MMA, and mma.sync
    mma: int | None = None
    ctas_per_sm: int | None = None
    low_precision: bool = False  # float16 / bfloat16 / TF32: its dots must be on tensor cores
    error: str | None = None
    problems: list = field(default_factory=list)


class Recorder:
    """Patches Triton so that launches compile (warmup) and are recorded instead of run."""

    def __init__(self, all_configs: bool):
        self.launches: list[Launch] = []
        self.kernels: dict[int, object] = {}  # id(Launch) -> CompiledKernel
        self.case = ""
        self.low_precision = False
        self.all_configs = all_configs
        self._groups = 0
        self._autotune: tuple[int, str] | None = None

    def install(self):
        recorder = self
        jit_run = JITFunction.run

        def run(fn, *args, grid, warmup, **kwargs):
            names = [p.name for p in fn.params]
            meta = {**dict(zip(names, args)), **kwargs}
            group, config = recorder._autotune or (0, "")
            launch = Launch(recorder.case, fn.fn.__name__, config or _constexprs(fn, meta), autotuned=bool(group),
                            group=group, low_precision=recorder.low_precision)
            recorder.launches.append(launch)
            try:
                kernel = jit_run(fn, *args, grid=grid, warmup=True, **kwargs)
            except Exception as e:  # noqa: BLE001 - reported, never hidden
                launch.error = f"{type(e).__name__}: {str(e).strip().splitlines()[-1][:300]}"
                if not group:
                    raise
                return None
            launch.grid = tuple(grid(meta) if callable(grid) else grid)
            recorder.kernels[id(launch)] = kernel
            return kernel

        def autotuned_run(tuner, *args, **kwargs):
            tuner.nargs = dict(zip(tuner.arg_names, args))
            configs = tuner.prune_configs(kwargs)
            if not recorder.all_configs:
                configs = configs[:1]
            recorder._groups += 1
            result = None
            try:
                for cfg in configs:
                    recorder._autotune = (recorder._groups, _config_name(cfg))
                    result = tuner.fn.run(*args, **kwargs, **cfg.all_kwargs()) or result
            finally:
                recorder._autotune = None
                tuner.nargs = None
            return result

        JITFunction.run = run
        Autotuner.run = autotuned_run


def _config_name(cfg) -> str:
    return ",".join(f"{k}={v}" for k, v in cfg.kwargs.items()) + f",warps={cfg.num_warps},stages={cfg.num_stages}"


def _constexprs(fn, meta) -> str:
    blocks = [f"{k}={meta[k]}" for k in meta if k.startswith("B") and k.isupper()]
    return ",".join(blocks) or "-"


_PTXAS_USE = re.compile(r"Used (\d+) registers")
_PTXAS_SPILL = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")


def ptxas_usage(ptx: str, cache: dict) -> tuple[int, int, int]:
    """(registers, spill store bytes, spill load bytes) of the one kernel in ``ptx``, from ptxas -v."""
    if ptx in cache:
        return cache[ptx]
    arch = re.search(r"^\.target\s+(sm_\w+)", ptx, re.M).group(1)
    ptxas = triton.knobs.nvidia.ptxas.path
    with tempfile.NamedTemporaryFile("w", suffix=".ptx") as f:
        f.write(ptx)
        f.flush()
        out = subprocess.run([ptxas, "-v", f"--gpu-name={arch}", f.name, "-o", os.devnull], capture_output=True,
                             text=True, check=True).stderr
    regs = int(_PTXAS_USE.search(out).group(1))
    spill = _PTXAS_SPILL.search(out)
    cache[ptx] = (regs, int(spill.group(2)), int(spill.group(3))) if spill else (regs, 0, 0)
    return cache[ptx]


# ---------------------------------------------------------------------------------------------------- cases


def _op_cases(quick: bool):
    """(name, dtype, all autotune configs?, callable) for every op, forward and backward."""
    from op_cases import OPS, make_case, prepare

    from mdrn_fast.registry import implementation

    dtypes = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
    # odd test shapes with one config; a realistic one (and the largest test shape) with every config
    shapes = [((3, 3, 12, 20), False), ((1, 16, 20, 12), False), ((2, 32, 64, 64), True)]
    if not quick:
        shapes.append(((2, 64, 256, 252), False))
    for dtype in dtypes:
        for shape, every in shapes:
            for op in OPS + ("add_noise",):
                scales = (2, 4) if op in ("degrade", "reconstruct") else (None,)
                for s in scales:
                    def call(op=op, shape=shape, s=s, dtype=dtype):
                        fn = implementation(op, "triton")
                        if op == "add_noise":
                            fn(torch.rand(shape, dtype=dtype), 25.0, 3, False)
                            return
                        case = make_case(op, shape, s) if s else make_case(op, shape)
                        args = prepare(case, dtype, "cpu")
                        out = fn(**args)
                        out.backward(torch.ones_like(out))

                    name = f"{op}{f' s{s}' if s else ''} {'x'.join(map(str, shape))} {str(dtype)[6:]}"
                    yield name, dtype, every and dtype != torch.float64, call


def _distill_cases(quick: bool):
    from mdrn_fast.registry import implementation

    # (student shape, teacher channels): odd sizes, the test shapes, a DnCNN-width teacher, 256 channels
    shapes = [((2, 5, 7, 9), 12), ((1, 16, 27, 29), 32), ((2, 32, 64, 64), 64), ((1, 256, 16, 16), 256)]
    for dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        for shape, ct in shapes:
            for kind in ("l1", "l2", "at", "fakd"):
                def call(kind=kind, shape=shape, ct=ct, dtype=dtype):
                    fs = torch.randn(shape, dtype=dtype, requires_grad=True)
                    ft = torch.randn(shape[0], shape[1] if kind in ("l1", "l2") else ct, *shape[2:], dtype=dtype,
                                     requires_grad=True)
                    implementation(f"distill_{kind}", "triton")(fs, ft).backward()

                yield f"distill {kind} {'x'.join(map(str, shape))}/{ct} {str(dtype)[6:]}", dtype, False, call
    # the grid limits at large sizes: 4096^2 positions for the channel energy, 2048^2 for FAKD
    for kind, hw in (("at", 4096), ("fakd", 2048), ("l1", 4096)):
        def call(kind=kind, hw=hw):
            fs = torch.randn(1, 2, hw, hw, requires_grad=True)
            ft = torch.randn(1, 2, hw, hw)
            implementation(f"distill_{kind}", "triton")(fs, ft).backward()

        yield f"distill {kind} 1x2x{hw}x{hw} float32 (grid limits)", torch.float32, False, call


def _large_cases():
    """Grid limits of the element-wise kernels at a large batch of small images."""
    from mdrn_fast.registry import implementation

    def call():
        t = torch.randn(70000, 1, 4, 4, requires_grad=True)
        out = implementation("bias_lrelu", "triton")(t, torch.zeros(1, requires_grad=True), 0.2)
        out = implementation("degrade", "triton")(out, torch.randn(1, 1, 2, 2), torch.zeros(1), 2, 0.2)
        out.sum().backward()

    yield "bias_lrelu + degrade 70000x1x4x4 float32 (grid limits)", torch.float32, False, call


@contextlib.contextmanager
def tf32(enabled: bool):
    """PyTorch's two fp32 switches, the matmul one (the GEMM kernels follow it) and cuDNN's (the convolutions)."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def _plan_cases(quick: bool):
    """The GPU inference plan (mdrn_fast/gpu_plan.py) of mdrn-base, gray and color, at a test size and at the
    benchmark's, in each dtype it runs: every convolution shape of the network, the block tail, the scale-add and
    the fusion."""
    from mdrn_fast import gpu_plan
    from mdrn_fast.models import mdrn

    shapes = [((1, 1, 20, 28), False), ((2, 3, 64, 64), True)]
    if not quick:
        shapes.append(((16, 1, 256, 256), False))
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        for shape, every in shapes:
            for preset in ("mdrn-base", "mdrn-large") if shape[1] == 3 else ("mdrn-base",):
                def call(shape=shape, dtype=dtype, preset=preset):
                    model = mdrn(preset, in_channels=shape[1], backend="torch")
                    gpu_plan.GpuPlan(model, dtype).trunk(torch.rand(shape))

                yield f"gpu plan {preset} {'x'.join(map(str, shape))} {str(dtype)[6:]}", dtype, every, call


def cases(quick: bool):
    for name, dtype, every, call in [*_op_cases(quick), *_distill_cases(quick), *_large_cases(), *_plan_cases(quick)]:
        yield name, dtype, every, call, False
        if dtype == torch.float32 and not name.endswith("(grid limits)"):
            yield name + " tf32", dtype, every and not quick, call, True


# ---------------------------------------------------------------------------------------------------- check


def _refusal(error: Exception, dtype: torch.dtype) -> bool:
    """A clear refusal of an unsupported dtype: a TypeError or ValueError that names it."""
    return isinstance(error, (TypeError, ValueError)) and str(dtype)[6:] in str(error)


def check(arch: int, quick: bool, only: str | None, every_config: bool = False) -> tuple[list[Launch], list[str], Recorder]:
    recorder = Recorder(all_configs=True)
    driver.set_active(StandInDriver(arch))
    recorder.install()
    import mdrn_fast.kernels  # noqa: F401  (registers the triton ops)

    failures = []
    selected = [c for c in cases(quick) if not only or re.search(only, c[0])]
    try:
        from tqdm import tqdm
        selected = tqdm(selected, desc=f"compiling for sm_{arch}", file=sys.stderr, mininterval=5)
    except ImportError:
        pass
    for name, dtype, every, call, use_tf32 in selected:
        recorder.case, recorder.all_configs = name, every or every_config
        recorder.low_precision = dtype in (torch.float16, torch.bfloat16) or use_tf32
        torch.manual_seed(0)
        try:
            with tf32(use_tf32):
                call()
        except Exception as e:  # noqa: BLE001
            if _refusal(e, dtype):
                continue
            failures.append(f"{name}: {type(e).__name__}: {str(e).strip().splitlines()[-1][:400]}")
    return recorder.launches, failures, recorder


def ctas_per_sm(arch: int, registers: int, warps: int, shared: int) -> int:
    """CTAs of a kernel one SM holds at once: limited by its 64K registers (allocated per warp in units of 256),
    its shared memory, its threads and 32 CTAs."""
    per_warp = -(-registers * 32 // 256) * 256
    by_registers = 65536 // (per_warp * warps)
    by_shared = SM_SHARED_MEMORY.get(arch, SM_SHARED_MEMORY[80]) // (shared + 1024) if shared else 32
    return max(0, min(by_registers, by_shared, SM_THREADS.get(arch, 2048) // (32 * warps), 32))


def judge(arch: int, launches: list[Launch], recorder: Recorder, spills_fail: bool) -> tuple[list[str], list[str]]:
    """Fill in resources and problems of every launch; return (failures, warnings)."""
    ptxas_cache: dict = {}
    limit = SHARED_MEMORY.get(arch, SHARED_MEMORY[80])
    for launch in launches:
        kernel = recorder.kernels.get(id(launch))
        if kernel is None:
            continue
        launch.shared = int(kernel.metadata.shared)
        launch.registers, launch.spill_stores, launch.spill_loads = ptxas_usage(kernel.asm["ptx"], ptxas_cache)
        launch.warps = int(kernel.metadata.num_warps)
        ptx = kernel.asm["ptx"]
        launch.wgmma, launch.mma = ptx.count("wgmma.mma_async"), ptx.count("mma.sync")
        launch.ctas_per_sm = ctas_per_sm(arch, launch.registers, launch.warps, launch.shared)
        if launch.shared > limit:
            launch.problems.append(f"shared memory {launch.shared} > {limit} bytes")
        if launch.kernel in TENSOR_CORE_KERNELS and launch.low_precision and not (launch.wgmma or launch.mma):
            launch.problems.append("no tensor-core instruction (wgmma / mma) in a float16, bfloat16 or TF32 variant")
        if launch.spill_stores and spills_fail:
            launch.problems.append(f"spills {launch.spill_stores} bytes")
        for axis, (size, most) in enumerate(zip(launch.grid, GRID_LIMITS)):
            if size > most:
                launch.problems.append(f"grid axis {axis} = {size} > {most}")
        if launch.error:
            launch.problems.append(launch.error)

    failures = []
    groups: dict[int, list[Launch]] = {}
    for launch in launches:
        if launch.autotuned:
            groups.setdefault(launch.group, []).append(launch)
        elif launch.problems:
            failures.append(f"{launch.case}: {launch.kernel} [{launch.config}]: {'; '.join(launch.problems)}")
    for members in groups.values():
        if all(m.problems for m in members):  # the autotuner would have no config left
            m = members[0]
            failures.append(f"{m.case}: {m.kernel}: every autotune config fails: "
                            + " | ".join(f"[{x.config}] {'; '.join(x.problems)}" for x in members))
        else:
            for x in members:  # grids do not depend on the config's success: any config over the limit fails
                failures += [f"{x.case}: {x.kernel} [{x.config}]: {p}" for p in x.problems if p.startswith("grid")]
    spilled = sorted({f"{x.kernel} [{x.config}]: up to {x.spill_stores} bytes" for x in launches
                      if x.spill_stores and not spills_fail})
    return failures, spilled


def summary(arch: int, launches: list[Launch]) -> str:
    """One line per distinct (kernel, config): worst registers, spills and shared memory over its launches."""
    rows: dict[tuple, list] = {}
    for x in launches:
        if x.registers is None:
            continue
        key = (x.kernel, x.config)
        r = rows.setdefault(key, [0, 0, 0, 0, 0, 0, 0, 32])
        r[0] = max(r[0], x.registers)
        r[1] = max(r[1], x.spill_stores)
        r[2] = max(r[2], x.shared)
        r[3] = max(r[3], max(x.grid) if x.grid else 0)
        r[4] += 1
        r[5] = max(r[5], x.wgmma)
        r[6] = max(r[6], x.mma)
        r[7] = min(r[7], x.ctas_per_sm)
    lines = [f"sm_{arch}: {len(launches)} launches, {len(rows)} kernel configs (wgmma, mma: most tensor-core "
             "instructions in the PTX of any launch; CTAs/SM: fewest)",
             f"{'kernel':<26} {'config':<58} {'regs':>4} {'spill B':>7} {'smem B':>7} {'wgmma':>5} {'mma':>5} "
             f"{'CTA/SM':>6} {'max grid':>9} {'launches':>8}"]
    for (kernel, config), (regs, spill, smem, grid, n, wg, mma, ctas) in sorted(rows.items()):
        lines.append(f"{kernel:<26} {config[:58]:<58} {regs:>4} {spill:>7} {smem:>7} {wg:>5} {mma:>5} {ctas:>6} "
                     f"{grid:>9} {n:>8}")
    return "\n".join(lines)


def _worst_per_kernel(spilled: list[str]) -> list[str]:
    return spilled[:20] + ([f"... and {len(spilled) - 20} more"] if len(spilled) > 20 else [])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", type=int, default=90, choices=sorted(SHARED_MEMORY), help="compute capability x 10")
    ap.add_argument("--quick", action="store_true", help="fewer shapes, and every autotune config only for "
                                                          "the realistic shape in IEEE fp32")
    ap.add_argument("--only", help="regular expression: only the cases whose name matches")
    ap.add_argument("--every-config", action="store_true", help="every autotune config in every case")
    ap.add_argument("--json", help="write every launch with its resources here")
    args = ap.parse_args(argv)
    start = time.time()
    launches, failures, recorder = check(args.arch, args.quick, args.only, args.every_config)
    judged, spilled = judge(args.arch, launches, recorder, spills_fail=args.arch == 90)
    failures += judged
    print(summary(args.arch, launches))
    for w in _worst_per_kernel(spilled):
        print("WARN spills on sm_%d (not a failure off sm_90):" % args.arch, w)
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(x) for x in launches], indent=1))
    print(f"sm_{args.arch}: {len(failures)} failures, {time.time() - start:.0f} s "
          f"(triton {triton.__version__}, torch {torch.__version__})")
    for f in failures:
        print("FAIL", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
