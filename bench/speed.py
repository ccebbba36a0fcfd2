"""Speed and memory of MDRN, one 3x3 layer and the fused ops, per provider, side by side in one run, against the
floors, with a profile of where each model row's time goes.

    python bench/speed.py                      # GPU: presets x shapes x fp32/bf16, the 3x3 layer, ops, distillation
    python bench/speed.py --quick              # GPU: what one device call has time for (bench/gpu_check.sh)
    python bench/speed.py --device cpu --quick # the CPU smoke run: mdrn-base 1x1x256x256, the layer, small ops
    python bench/speed.py --device cpu --tiny  # every group at tiny sizes in seconds (the tests, the rehearsal)

Writes a markdown table to stdout and <--out>/<device>-<date>.{json,md,png,profile.md} (default: a per-user
cache folder; bench/results/ holds the committed runs). See bench/README.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import math
import os
import re
import sys
import time
import traceback
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).parent))
import floors  # noqa: E402
import profile_table  # noqa: E402
import workloads  # noqa: E402
from timing import Budget, FirstCallTooSlow, time_cpu, time_gpu  # noqa: E402
from workloads import (GROUPS, PEERS, PROVIDERS, Skip, distill_workloads, layer_workloads, model_workloads,  # noqa: E402
                       op_workloads)

import mdrn_fast  # noqa: E402

COMPILES = ("compile", "compile-max")


class Clock:
    """The run's time budget (--budget-s): rows not started in time are listed as not reached."""

    def __init__(self, seconds: float | None):
        self.end = time.monotonic() + seconds if seconds else math.inf

    def left(self) -> float:
        return self.end - time.monotonic()


def count_flops(fn) -> float:
    """FLOPs of one call, with cuDNN's benchmark off meanwhile: the providers' own first calls then pay for it."""
    bench, torch.backends.cudnn.benchmark = torch.backends.cudnn.benchmark, False
    try:
        with FlopCounterMode(display=False) as counter:
            fn()
        return float(counter.get_total_flops())
    finally:
        torch.backends.cudnn.benchmark = bench


def set_fp32_precision(tf32: bool) -> None:
    """One TF32 switch for every provider: cuDNN convolutions (eager, compile) and matmuls (fused GEMMs)."""
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32


def select_workloads(args, device) -> list:
    """The model rows first (inference, then the train step), then the 3x3 layer, the ops, the distillation
    losses: the order of what decides the GPU design, since a run may be cut by its budget."""
    gpu = device.type == "cuda"
    presets = args.presets.split(",")
    f32 = [torch.float32]
    if getattr(args, "tiny", False):
        work = model_workloads(presets, [(1, 1, 32, 32)], device, f32, modes=("infer", "train"))
        work += layer_workloads([(1, 8, 32, 32)], device, f32)
        work += op_workloads(1, 8, 16, device)
        work += distill_workloads([(1, 8, 8, 8)], device)
    elif args.quick and gpu:
        slow = {"compile-max": "--quick leaves out max-autotune of the train step (minutes of compiling and "
                               "autotuning the backward too); the full run measures it"}
        work = model_workloads(presets, [(16, 1, 256, 256)], device, f32, modes=("infer", "train"), skips_train=slow)
        work += layer_workloads([(16, 32, 256, 256)], device, f32)
        work += op_workloads(16, 32, 256, device)
        work += distill_workloads([(16, 32, 64, 64)], device)
    elif args.quick:
        work = model_workloads(presets, [(1, 1, 256, 256)], device, f32, modes=("infer",))
        work += layer_workloads([(1, 32, 256, 256)], device, f32)
        work += op_workloads(1, 32, 128, device)
        work += distill_workloads([(2, 32, 32, 32)], device)
    else:
        dtypes = [torch.float32, torch.bfloat16] if gpu else f32
        work = model_workloads(presets, [(16, 1, 256, 256), (8, 3, 256, 256)], device, dtypes)
        work += layer_workloads([(16, 32, 256, 256)] if gpu else [(1, 32, 256, 256)], device, dtypes,
                                variants=("lrelu", "bias", "residual"))
        work += op_workloads(16 if gpu else 1, 32, 256, device)
        work += distill_workloads([(16, 32, 64, 64), (16, 32, 128, 128)], device)
    if args.only:
        groups = args.only.split(",")
        work = [w for w in work if w.group in groups]
    return sorted(work, key=lambda w: GROUPS.index(w.group))  # stable: keeps each group's own order


def row_budget(w, args, device) -> Budget:
    """Samples and seconds per row: at least 30 samples for the model rows on a GPU; the first calls (compile,
    max-autotune, Triton autotuning) may take two minutes there."""
    tiny, quick, gpu = getattr(args, "tiny", False), args.quick, device.type == "cuda"
    if tiny:
        return Budget(3, 20, 0.25 if w.group == "model" else 0.05, 120.0)
    if not gpu:
        return Budget(5, 50, (4.0 if w.group == "model" else 1.5) if quick else 3.0, 600.0)
    if w.group == "model":  # a quick row stops at 30 samples once half its seconds are spent: ~1 s inference
        seconds = (2.0 if w.inference else 4.0) if quick else 15.0
        return Budget(30, 100 if quick else 300, seconds, 120.0 if quick else 600.0)
    if w.group == "layer":
        return Budget(30, 200, 1.0 if quick else 4.0, 120.0 if quick else 600.0)
    return Budget(20, 100, 0.5 if quick else 2.0, 60.0 if quick else 300.0)


def _error(e: Exception) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:300] if text else ''}"


def _floors(w, flops: float | None, peaks: dict) -> dict:
    """The compute floor (FLOPs, weights + input + output) and, for model rows, the design floors."""
    if flops is None:
        return {}
    out = dict(flops=flops, bytes=w.bytes, floor_ms=floors.floor_seconds(flops, w.bytes, peaks, w.low_precision) * 1e3)
    if w.design:
        d = w.design
        designs = floors.design_floors(d["config"], d["shape"], d["bytes_per_element"], d["train"])
        out["designs"] = {k: dict(maps=maps, memory_ms=b / peaks["bytes_per_s"] * 1e3,
                                  ms=floors.floor_seconds(flops, b, peaks, w.low_precision) * 1e3)
                          for k, (maps, b) in designs.items()}
        out["layer_floor_ms"] = out["designs"]["layer"]["ms"]
    return out


def build(w, provider: str, state: dict, peaks: dict) -> tuple[dict, object]:
    """(row, closure): the closure to time for the provider, or None and the row says why it was skipped or the
    error it hit (the run goes on either way). ``state`` carries the FLOP count (of the reference) across the
    providers of w."""
    row = dict(workload=w.name, group=w.group, provider=provider)
    try:
        if "floors" not in state:
            state["floors"] = {}
            state["floors"] = _floors(w, count_flops(w.build("torch")), peaks)
    except Exception as e:  # noqa: BLE001 - no reference, no floor: the rows still get their times
        state["floors"] = {}
        print(f"{w.name}: no FLOP count ({_error(e)})", file=sys.stderr)
    row.update({k: v for k, v in state["floors"].items() if k != "designs"})
    if provider in w.skips:
        row["skipped"] = w.skips[provider]
        return row, None
    try:
        return row, w.build(provider)
    except (Skip, mdrn_fast.BackendError) as e:
        row["skipped"] = str(e)
    except torch.cuda.OutOfMemoryError as e:
        row["skipped"] = f"out of memory: {str(e).splitlines()[0]}"
    except Exception as e:  # noqa: BLE001 - one provider failing must not cost the others' rows
        row["error"] = _error(e)
        traceback.print_exc(file=sys.stderr)
    return row, None


def _record(row: dict, timing: dict | Exception) -> dict:
    """row with the timing, or what stopped it."""
    if isinstance(timing, FirstCallTooSlow):
        torch._dynamo.reset()  # a compile stopped half way leaves nothing worth keeping
        row["cut"] = str(timing)
    elif isinstance(timing, Exception):
        row["error"] = _error(timing)
        traceback.print_exception(timing, file=sys.stderr)
    else:
        row.update(timing)
        if "floor_ms" in row:
            row["pct_of_floor"] = 100 * row["floor_ms"] / row["ms"]
        if "layer_floor_ms" in row:
            row["pct_of_layer_floor"] = 100 * row["layer_floor_ms"] / row["ms"]
    return row


def _profile(w, args) -> bool:
    which = getattr(args, "profile", "infer")
    return which != "none" and (w.group == "layer" or w.group == "model" and (w.inference or which == "model"))


def _profile_section(w, row, fn, device) -> str:
    try:
        return profile_table.section(w.name, row["provider"], row["ms"], profile_table.top_kernels(fn, device))
    except Exception as e:  # noqa: BLE001 - a profile that fails costs only itself
        return profile_table.section(w.name, row["provider"], row["ms"], None, _error(e))


def measure(w, providers, device, peaks: dict, args, clock: Clock, on_row=lambda row: None,
            profiles: list | None = None) -> list[dict]:
    """One row per provider of workload w. On a GPU each provider is built, timed alone (CUDA events),
    profiled and freed before the next, and reported as it finishes; on a CPU all are built, then timed in
    turn (time_cpu). Ratios (ratios()) are added once the workload is done."""
    state: dict = {}
    budget = row_budget(w, args, device)
    profiles = profiles if profiles is not None else []
    rows = []

    def clipped() -> Budget:
        left = max(1.0, clock.left())
        return Budget(budget.min_samples, budget.max_samples, min(budget.seconds, left),
                      min(budget.first_call_s, left))

    if device.type == "cpu":
        built = [build(w, p, state, peaks) for p in providers]
        timed = time_cpu({row["provider"]: fn for row, fn in built if fn is not None}, clipped())
        for row, fn in built:
            if fn is not None:
                t = timed[row["provider"]]
                _record(row, t.get("error", t))
                if "ms" in row and _profile(w, args):
                    profiles.append(_profile_section(w, row, fn, device))
            rows.append(row)
            on_row(row)
    else:
        for provider in providers:
            if clock.left() <= 0:
                rows.append(dict(workload=w.name, group=w.group, provider=provider,
                                 skipped="not reached within the run's --budget-s"))
                on_row(rows[-1])
                continue
            row, fn = build(w, provider, state, peaks)
            if fn is not None:
                try:
                    timing = time_gpu(fn, clipped())
                except Exception as e:  # noqa: BLE001
                    timing = e
                _record(row, timing)
                timing = None  # an exception's frames hold the closure and the L2 flush buffer
                if "ms" in row and _profile(w, args):
                    profiles.append(_profile_section(w, row, fn, device))
            rows.append(row)
            on_row(row)
            del fn
            gc.collect()
            torch.cuda.empty_cache()
    if state.get("floors", {}).get("designs"):
        for r in rows:
            r["designs"] = state["floors"]["designs"]
    return ratios(rows)


def ratios(rows: list[dict]) -> list[dict]:
    """Against eager (``torch``), the best peer (eager, channels_last, graphed, compiled) and the best compile."""
    ms = {r["provider"]: r["ms"] for r in rows if "ms" in r}
    peers = [ms[p] for p in PEERS if p in ms]
    compiles = [ms[p] for p in COMPILES if p in ms]
    for r in rows:
        if "ms" in r:
            r["speedup"] = ms["torch"] / r["ms"] if "torch" in ms else None
            r["vs_best_peer"] = min(peers) / r["ms"] if peers else None
            r["vs_best_compile"] = min(compiles) / r["ms"] if compiles else None
    return rows


def run(args, peaks: dict, on_row=lambda row: None, on_workload=lambda rows, profiles: None) -> dict:
    device = torch.device(args.device)
    torch.manual_seed(0)
    providers = [p for p in args.providers.split(",") if p in PROVIDERS]
    clock = Clock(getattr(args, "budget_s", None))
    rows, profiles, not_reached = [], [], []
    for w in select_workloads(args, device):
        if clock.left() <= 0:
            not_reached.append(w.name)
            continue
        rows += measure(w, providers, device, peaks, args, clock, lambda r: (on_row(r), _print_line(r)), profiles)
        on_workload(rows, profiles)
        gc.collect()
    return dict(device=peaks["name"], peaks=peaks, date=dt.date.today().isoformat(), command=" ".join(sys.argv),
                torch=torch.__version__, triton=_triton_version(), fp32=args.fp32_precision,
                cudnn_benchmark=torch.backends.cudnn.benchmark, compile_backend=workloads.COMPILE_BACKEND,
                autotune=_autotune(), rows=rows, not_reached=not_reached)


def _autotune() -> str:
    import os

    return os.environ.get("MDRN_FAST_TRITON_AUTOTUNE", "1 (default)")


def _triton_version():
    try:
        import triton

        return triton.__version__
    except ImportError:
        return None


def _print_line(r) -> None:
    print(_line(r), file=sys.stderr, flush=True)


def _line(r) -> str:
    head = f"{r['workload']:<40} {r['provider']:<12}"
    if "skipped" in r:
        return f"{head} skipped: {r['skipped'][:90]}"
    if "error" in r:
        return f"{head} ERROR: {r['error'][:90]}"
    if "ms" not in r:
        return f"{head} CUT: {r.get('cut', '')[:90]}"
    floor = f"{r['pct_of_floor']:5.1f}% compute floor" if "pct_of_floor" in r else ""
    layer = f"  {r['pct_of_layer_floor']:5.1f}% layer floor" if "pct_of_layer_floor" in r else ""
    cut = f"  (cut: {r['cut']})" if "cut" in r else ""
    return (f"{head} {r['ms']:9.3f} ms  n={r['samples']:<3} first {r['first_s']:6.1f} s  {floor}{layer}{cut}")


def _x(v) -> str:
    return f"{v:.2f}x" if v else "-"


def _pct(r, key) -> str:
    return f"{r[key]:.1f}%" if key in r else "-"


def markdown(result: dict) -> str:
    p = result["peaks"]
    cpu = result["device"].startswith("CPU")
    measured = f"; measured copy {p['measured_bytes_per_s'] / 1e9:.0f} GB/s" if p.get("measured_bytes_per_s") else ""
    out = [f"# mdrn_fast speed: {result['device']}, {result['date']}", "",
           f"torch {result['torch']}, triton {result['triton']}; peaks: {p['flops_fp32'] / 1e12:.2f} TFLOP/s fp32, "
           f"{p['flops_tf32'] / 1e12:.1f} TFLOP/s tf32, {p['flops_bf16'] / 1e12:.1f} TFLOP/s bf16, "
           f"{p['bytes_per_s'] / 1e9:.0f} GB/s ({p['source']}{measured}). fp32 matmuls and convolutions: "
           f"{result['fp32']}; cuDNN benchmark {'on' if result.get('cudnn_benchmark') else 'off'} for every provider; "
           f"torch.compile backend {result.get('compile_backend', 'inductor')}; Triton autotuning "
           f"{result.get('autotune', '?')}.",
           f"Command: `{result['command']}`", "",
           "Timing: " + ("the providers of a workload in turn, round after round (ratios hold on a noisy machine)"
                         if cpu else "CUDA events per sample, L2 flushed before each, each provider alone") +
           "; `first + warm-up s`: the first call (compiling, autotuning, cuDNN's benchmark, graph capture) and the "
           "3 calls after it, apart from the samples. vs best peer: against the fastest of eager, eager "
           "channels_last, eager graph-captured and torch.compile (both modes).",
           "Floors: `% compute` is against the compute floor, max(FLOPs / peak, (weights + input + output) / "
           "bandwidth); `% layer` against the design floor of one kernel per layer, max(FLOPs / peak, the maps it "
           "moves / bandwidth), model rows only (Design floors below; bench/README.md says how maps are counted).",
           "", "| workload | provider | median ms | p20-p80 ms | n | first + warm-up s | vs eager | vs best peer | "
           "% compute | % layer | peak MB |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        if "ms" not in r:
            continue
        mem = f"{r['peak_mb']:.0f}" if r.get("peak_mb") is not None else "n/a"
        out.append(f"| {r['workload']} | {r['provider']} | {r['ms']:.3f} | {r['p20']:.3f}-{r['p80']:.3f} | "
                   f"{r['samples']} | {r['first_s']:.1f} + {r['warm_s']:.1f} | {_x(r.get('speedup'))} | "
                   f"{_x(r.get('vs_best_peer'))} | {_pct(r, 'pct_of_floor')} | {_pct(r, 'pct_of_layer_floor')} | "
                   f"{mem} |")
    out += _design_table(result["rows"]) + _summary(result["rows"])
    cut = [r for r in result["rows"] if "cut" in r]
    if cut:
        out += ["", "Cut short (measured what the row's budget allowed):"]
        out += [f"- {r['workload']}, {r['provider']}: {r['cut']}" for r in cut]
    skipped = sorted({(r["provider"], r["skipped"]) for r in result["rows"] if "skipped" in r})
    if skipped:
        out += ["", "Not measured here:"] + [f"- {prov}: {why}" for prov, why in skipped]
    errors = [r for r in result["rows"] if "error" in r]
    if errors:
        out += ["", "Failed here:"] + [f"- {r['workload']}, {r['provider']}: {r['error']}" for r in errors]
    if result.get("not_reached"):
        out += ["", "Not reached within the run's budget: " + ", ".join(result["not_reached"])]
    return "\n".join(out) + "\n"


def _by_workload(rows, groups) -> dict:
    out: dict = {}
    for r in rows:
        if r["group"] in groups:
            out.setdefault(r["workload"], []).append(r)
    return out


def _design_table(rows) -> list[str]:
    """Per model workload: each design's maps and floor, and how near the fastest provider here is to it."""
    out = []
    for name, rs in _by_workload(rows, ("model",)).items():
        designs = next((r["designs"] for r in rs if "designs" in r), None)
        timed = [r for r in rs if "ms" in r]
        if not designs:
            continue
        if not out:
            out = ["", "## Design floors", "",
                   "The maps each design must move (bench/README.md) over the bandwidth (memory ms); the floor is "
                   "that or the FLOPs over the peak, whichever is longer; best here: the fastest provider of the "
                   "workload.", "",
                   "| workload | design | maps | memory ms | floor ms | best here | % of floor |",
                   "|---|---|---|---|---|---|---|"]
        best = min(timed, key=lambda r: r["ms"]) if timed else None
        for key, d in designs.items():
            label = floors.DESIGNS[key][0]
            here = f"{best['provider']} {best['ms']:.3f} ms" if best else "-"
            pct = f"{100 * d['ms'] / best['ms']:.1f}%" if best else "-"
            out.append(f"| {name} | {label} | {d['maps']:.1f} | {d.get('memory_ms', d['ms']):.3f} | {d['ms']:.3f} | "
                       f"{here} | {pct} |")
    return out


def _summary(rows) -> list[str]:
    """Per model and layer workload: each provider against eager and against the better torch.compile mode."""
    out = []
    for name, rs in _by_workload(rows, ("model", "layer")).items():
        timed = [r for r in rs if "ms" in r]
        if not timed:
            continue
        if not out:
            out = ["", "## Summary", "", "Ratios of times (above 1: faster than eager, or than the faster of the two "
                   "torch.compile modes measured).", "",
                   "| workload | provider | median ms | vs eager | vs best compile |", "|---|---|---|---|---|"]
        for r in sorted(timed, key=lambda r: r["ms"]):
            out.append(f"| {name} | {r['provider']} | {r['ms']:.3f} | {_x(r.get('speedup'))} | "
                       f"{_x(r.get('vs_best_compile'))} |")
    return out


def plot(result: dict, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot", file=sys.stderr)
        return False
    rows = [r for r in result["rows"] if "ms" in r and r.get("speedup")]
    names = list(dict.fromkeys(r["workload"] for r in rows))
    provs = list(dict.fromkeys(r["provider"] for r in rows))
    fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(names) + 2), 4.5))
    width = 0.8 / max(1, len(provs))
    for i, prov in enumerate(provs):
        xs, ys = [], []
        for j, name in enumerate(names):
            for r in rows:
                if r["workload"] == name and r["provider"] == prov:
                    xs.append(j + i * width)
                    ys.append(r["speedup"])
        ax.bar(xs, ys, width, label=prov)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(names))], names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("speedup vs eager (torch)")
    ax.set_title(f"mdrn_fast, {result['device']}, {result['date']}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def default_out() -> Path:
    """Outside the source tree: the per-user cache ($XDG_CACHE_HOME or ~/.cache)/mdrn_fast/bench."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mdrn_fast" / "bench"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                    help="where to measure: cuda (the default where a GPU is visible) or cpu")
    ap.add_argument("--quick", action="store_true", help="what one device call has time for; on a CPU a smoke run")
    ap.add_argument("--tiny", action="store_true", help="every group at tiny sizes, a few samples (seconds on a CPU)")
    ap.add_argument("--only", help=f"comma-separated groups, of {', '.join(GROUPS)}")
    ap.add_argument("--presets", default="mdrn-base", help="comma-separated presets (full run: try all three)")
    ap.add_argument("--providers", default=",".join(PROVIDERS), help=f"comma-separated, of {', '.join(PROVIDERS)}")
    ap.add_argument("--fp32-precision", choices=["tf32", "ieee"],
                    help="fp32 convolutions and matmuls of every provider on a GPU (default tf32, what cuDNN does "
                         "by default; ieee: full fp32). CPUs have no TF32: ieee there")
    ap.add_argument("--budget-s", type=float, help="seconds for the whole run: rows not started by then are listed "
                                                   "as not reached, and the results are still written")
    ap.add_argument("--profile", choices=["infer", "model", "none"], default="infer",
                    help="top kernels per provider of the model inference and 3x3 layer rows (model: the train "
                         "rows too)")
    ap.add_argument("--compile-backend", default="inductor",
                    help="torch.compile's backend (aot_eager: the wiring without code generation, as the tests run)")
    ap.add_argument("--out", default=str(default_out()),
                    help="folder for the results (default: %(default)s; bench/results/ holds the committed ones)")
    args = ap.parse_args(argv)
    if args.only and set(args.only.split(",")) - set(GROUPS):
        ap.error(f"--only: groups are {', '.join(GROUPS)}")
    args.quick = args.quick or args.tiny
    workloads.COMPILE_BACKEND = args.compile_backend
    if args.device == "cpu":  # tiny: one thread, since tiny ops on a busy 2-core machine wait for the second
        torch.set_num_threads(1 if args.tiny else min(torch.get_num_threads(), 2) if args.quick else torch.get_num_threads())
    if args.fp32_precision is None:
        args.fp32_precision = "tf32" if args.device.startswith("cuda") else "ieee"
    set_fp32_precision(args.fp32_precision == "tf32")
    torch.backends.cudnn.benchmark = True  # for every provider: cuDNN's fastest algorithm per shape, as training does
    peaks = floors.device_peaks(torch.device(args.device))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", peaks["name"]).strip("-").lower()
    mode = "-tiny" if args.tiny else "-quick" if args.quick else ""
    stem = out / f"{slug}-{dt.date.today().isoformat()}{mode}"
    partial = Path(f"{stem}.rows.jsonl")  # one line per row as it finishes: a crash keeps what finished
    partial.unlink(missing_ok=True)
    profile_path = Path(f"{stem}.profile.md")
    title = f"Where the time goes: {peaks['name']}, {dt.date.today().isoformat()}"

    def on_row(row):
        with partial.open("a") as f:
            f.write(json.dumps({k: v for k, v in row.items() if k != "designs"}) + "\n")

    def on_workload(rows, profiles):
        if profiles:
            profile_table.write(profile_path, title, profiles)

    result = run(args, peaks, on_row, on_workload)
    md = markdown(result)
    print(md)
    Path(f"{stem}.json").write_text(json.dumps(result, indent=1))
    Path(f"{stem}.md").write_text(md)
    plot(result, Path(f"{stem}.png"))
    partial.unlink()
    print(f"wrote {stem}.json, .md, .png" + (", .profile.md" if profile_path.exists() else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
