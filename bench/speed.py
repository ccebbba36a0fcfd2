"""Speed and memory of MDRN and its fused ops, per provider, side by side in one run, against the floor.

    python bench/speed.py                      # GPU: presets x shapes x fp32/bf16, ops, distillation losses
    python bench/speed.py --device cpu --quick # the CPU smoke run (CI): mdrn-base 1x1x256x256, small ops

Writes a markdown table to stdout and bench/results/<device>-<date>.{json,md,png}. See bench/README.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import re
import statistics
import sys
import time
import traceback
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).parent))
from floors import device_peaks, floor_seconds  # noqa: E402
from workloads import PEERS, PROVIDERS, Skip, distill_workloads, model_workloads, op_workloads  # noqa: E402

import mdrn_fast  # noqa: E402


def time_gpu(fn, quick: bool) -> dict:
    """Median and 20/80% quantiles in ms and peak memory (CUDA events via do_bench, L2 flushed)."""
    import triton.testing

    fn()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    med, p20, p80 = triton.testing.do_bench(fn, warmup=25, rep=100 if quick else 300, quantiles=[0.5, 0.2, 0.8])
    return dict(ms=med, p20=p20, p80=p80, peak_mb=peak / 2**20)


def time_cpu(fns: dict, quick: bool) -> dict:
    """Medians and 20/80% quantiles in ms of several closures timed in turn, round after round, so that a
    noisy machine slows them alike and their ratios hold."""
    for fn in fns.values():
        fn()
    times: dict = {k: [] for k in fns}
    budget, rounds = time.perf_counter() + (1.5 if quick else 3.0) * len(fns), 0
    while fns and (rounds < 5 or (time.perf_counter() < budget and rounds < 50)):
        rounds += 1
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append((time.perf_counter() - t) * 1e3)
    out = {}
    for k, ts in times.items():
        q = statistics.quantiles(ts, n=5)
        out[k] = dict(ms=statistics.median(ts), p20=q[0], p80=q[3], peak_mb=None)
    return out


def count_flops(fn) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def set_fp32_precision(tf32: bool) -> None:
    """One TF32 switch for every provider: cuDNN convolutions (eager, compile) and matmuls (fused GEMMs)."""
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32


def select_workloads(args, device) -> list:
    gpu = device.type == "cuda"
    if args.quick:
        shapes = [(1, 1, 256, 256)] if not gpu else [(16, 1, 256, 256)]
        work = model_workloads(args.presets.split(","), shapes, device, [torch.float32],
                               modes=("infer",) if not gpu else ("infer", "train"))
        work += op_workloads(1, 32, 128, device) if not gpu else op_workloads(16, 32, 256, device)
        work += distill_workloads([(2, 32, 32, 32)] if not gpu else [(16, 32, 64, 64)], device)
    else:
        dtypes = [torch.float32, torch.bfloat16] if gpu else [torch.float32]
        work = model_workloads(args.presets.split(","), [(16, 1, 256, 256), (8, 3, 256, 256)], device, dtypes)
        work += op_workloads(16 if gpu else 1, 32, 256, device)
        work += distill_workloads([(16, 32, 64, 64), (16, 32, 128, 128)], device)
    if args.only:
        work = [w for w in work if w.group == args.only]
    return work


def _error(e: Exception) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:300] if text else ''}"


def build(w, provider: str, peaks: dict, state: dict) -> tuple[dict, object]:
    """(row, closure): the closure to time for the provider, or None and the row says why it was skipped or the
    error it hit (the run goes on either way). ``state`` carries the FLOP count across the providers of w."""
    row = dict(workload=w.name, group=w.group, provider=provider)
    try:
        fn = w.build(provider)
        if state.get("flops") is None:
            state["flops"] = count_flops(fn)
        floor_ms = floor_seconds(state["flops"], w.bytes, peaks, w.low_precision) * 1e3
        row.update(flops=state["flops"], bytes=w.bytes, floor_ms=floor_ms)
        return row, fn
    except (Skip, mdrn_fast.BackendError) as e:
        row["skipped"] = str(e)
    except torch.cuda.OutOfMemoryError as e:
        row["skipped"] = f"out of memory: {str(e).splitlines()[0]}"
    except Exception as e:  # noqa: BLE001 - one provider failing must not cost the others' rows
        row["error"] = _error(e)
        traceback.print_exc(file=sys.stderr)
    return row, None


def _record(row: dict, timing) -> dict:
    """row with the timing ``timing()`` returns, or the error it raised."""
    try:
        row.update(timing())
        row["pct_of_floor"] = 100 * row["floor_ms"] / row["ms"]
    except Exception as e:  # noqa: BLE001
        row["error"] = _error(e)
        traceback.print_exc(file=sys.stderr)
    return row


def measure(w, providers, device: torch.device, peaks: dict, quick: bool) -> list[dict]:
    """One row per provider of workload w. On a GPU each provider is built, timed alone (CUDA events) and freed
    before the next; on a CPU all are built, then timed in turn (time_cpu). Speedups are against eager
    (``torch``) and against the best peer: the fastest of eager, eager channels_last and torch.compile."""
    state: dict = {}
    rows = []
    if device.type == "cpu":
        built = [build(w, p, peaks, state) for p in providers]
        timed = time_cpu({row["provider"]: fn for row, fn in built if fn is not None}, quick)
        rows = [row if fn is None else _record(row, lambda row=row: timed[row["provider"]]) for row, fn in built]
    else:
        for provider in providers:
            row, fn = build(w, provider, peaks, state)
            rows.append(row if fn is None else _record(row, lambda: time_gpu(fn, quick)))
            del fn
            gc.collect()
            torch.cuda.empty_cache()
    ms = {r["provider"]: r["ms"] for r in rows if "ms" in r}
    peers = [ms[p] for p in PEERS if p in ms]
    for r in rows:
        if "ms" in r:
            r["speedup"] = ms["torch"] / r["ms"] if "torch" in ms else None
            r["vs_best_peer"] = min(peers) / r["ms"] if peers else None
    return rows


def run(args, peaks: dict, on_row=lambda row: None) -> dict:
    device = torch.device(args.device)
    torch.manual_seed(0)
    providers = [p for p in args.providers.split(",") if p in PROVIDERS]
    rows = []
    for w in select_workloads(args, device):
        for row in measure(w, providers, device, peaks, args.quick):
            rows.append(row)
            on_row(row)
            print(_line(row), file=sys.stderr, flush=True)
        gc.collect()
    return dict(device=peaks["name"], peaks=peaks, date=dt.date.today().isoformat(), command=" ".join(sys.argv),
                torch=torch.__version__, triton=_triton_version(), fp32=args.fp32_precision, rows=rows)


def _triton_version():
    try:
        import triton

        return triton.__version__
    except ImportError:
        return None


def _line(r) -> str:
    if "skipped" in r:
        return f"{r['workload']:<44} {r['provider']:<8} skipped: {r['skipped'][:90]}"
    if "error" in r:
        return f"{r['workload']:<44} {r['provider']:<8} ERROR: {r['error'][:90]}"
    sp = f"{r['speedup']:.2f}x" if r.get("speedup") else "-"
    bp = f"{r['vs_best_peer']:.2f}x" if r.get("vs_best_peer") else "-"
    return (f"{r['workload']:<44} {r['provider']:<8} {r['ms']:9.3f} ms  {sp:>7} eager  {bp:>7} best peer  "
            f"{r['pct_of_floor']:5.1f}% of floor")


def markdown(result: dict) -> str:
    p = result["peaks"]
    out = [f"# mdrn_fast speed: {result['device']}, {result['date']}", "",
           f"torch {result['torch']}, triton {result['triton']}; peaks: {p['flops_fp32'] / 1e12:.2f} TFLOP/s fp32, "
           f"{p['flops_tf32'] / 1e12:.1f} TFLOP/s tf32, {p['flops_bf16'] / 1e12:.1f} TFLOP/s bf16, "
           f"{p['bytes_per_s'] / 1e9:.0f} GB/s ({p['source']}). fp32 matmuls and convolutions: {result['fp32']}.",
           f"Command: `{result['command']}`", "",
           "Timing: " + ("the providers of a workload in turn, round after round (ratios hold on a noisy machine)"
                         if result["device"].startswith("CPU") else "CUDA events, each provider alone")
           + ". vs best peer: against the fastest of eager, eager channels_last and torch.compile.", "",
           "| workload | provider | median ms | p20-p80 ms | vs torch | vs best peer | % of floor | peak MB |",
           "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        if "skipped" in r or "error" in r:
            continue
        mem = f"{r['peak_mb']:.0f}" if r["peak_mb"] is not None else "n/a"
        sp = f"{r['speedup']:.2f}x" if r["speedup"] else "-"
        bp = f"{r['vs_best_peer']:.2f}x" if r.get("vs_best_peer") else "-"
        out.append(f"| {r['workload']} | {r['provider']} | {r['ms']:.3f} | {r['p20']:.3f}-{r['p80']:.3f} | {sp} | "
                   f"{bp} | {r['pct_of_floor']:.1f}% | {mem} |")
    skipped = sorted({(r["provider"], r["skipped"]) for r in result["rows"] if "skipped" in r})
    if skipped:
        out += ["", "Not measured here:"] + [f"- {prov}: {why}" for prov, why in skipped]
    errors = [r for r in result["rows"] if "error" in r]
    if errors:
        out += ["", "Failed here:"] + [f"- {r['workload']}, {r['provider']}: {r['error']}" for r in errors]
    return "\n".join(out) + "\n"


def plot(result: dict, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot", file=sys.stderr)
        return False
    rows = [r for r in result["rows"] if "skipped" not in r and "error" not in r and r["speedup"]]
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
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true", help="a small set that fits CI (under 2 minutes on 2 cores)")
    ap.add_argument("--only", choices=["model", "op", "distill"])
    ap.add_argument("--presets", default="mdrn-base", help="comma-separated presets (full run: try all three)")
    ap.add_argument("--providers", default=",".join(PROVIDERS), help=f"comma-separated, of {', '.join(PROVIDERS)}")
    ap.add_argument("--fp32-precision", choices=["tf32", "ieee"],
                    help="fp32 convolutions and matmuls of every provider on a GPU (default tf32, what cuDNN does "
                         "by default; ieee: full fp32). CPUs have no TF32: ieee there")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args(argv)
    if args.device == "cpu":
        torch.set_num_threads(min(torch.get_num_threads(), 2) if args.quick else torch.get_num_threads())
    if args.fp32_precision is None:
        args.fp32_precision = "tf32" if args.device.startswith("cuda") else "ieee"
    set_fp32_precision(args.fp32_precision == "tf32")
    peaks = device_peaks(torch.device(args.device))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", peaks["name"]).strip("-").lower()
    stem = out / f"{slug}-{dt.date.today().isoformat()}{'-quick' if args.quick else ''}"
    partial = stem.with_suffix(".rows.jsonl")  # one line per row as it finishes: a crash keeps what finished
    partial.unlink(missing_ok=True)

    def on_row(row):
        with partial.open("a") as f:
            f.write(json.dumps(row) + "\n")

    result = run(args, peaks, on_row)
    md = markdown(result)
    print(md)
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1))
    stem.with_suffix(".md").write_text(md)
    plot(result, stem.with_suffix(".png"))
    partial.unlink()
    print(f"wrote {stem}.json, .md, .png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
