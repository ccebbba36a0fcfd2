"""Where a row's time goes: the top kernels of a timed closure (torch.profiler), as a markdown table.

On a GPU: device time per kernel (memory copies and sets included), and how much of the row's median the kernels
fill (the rest is the GPU waiting for the host: launches, dispatch, Python). On a CPU the same table holds the
ops' self CPU time, so the writer is tested without a GPU. (Not named profile.py: that would shadow the standard
library's module, which cProfile and so torch._dynamo import, for every script in bench/.)
"""
from __future__ import annotations

import time
from pathlib import Path

import torch


def top_kernels(fn, device: torch.device, steps: int = 3, top: int = 12) -> dict:
    """{"kind", "per_call_ms" (all kernels or ops), "rows": [{name, calls, ms, share}]} per call of ``fn``,
    from ``steps`` calls after one more warm-up call; ``share`` of all kernels' time."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    gpu = device.type == "cuda"
    sync = torch.cuda.synchronize if gpu else (lambda: None)
    fn()
    sync()
    with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            fn()
        sync()
        wall_ms = (time.perf_counter() - start) * 1e3 / steps  # the profiler's own cost included
    rows = []
    for e in prof.key_averages():
        if gpu:
            if e.device_type != DeviceType.CUDA:
                continue
            us = getattr(e, "self_device_time_total", None)
            us = us if us is not None else e.self_cuda_time_total
        else:
            us = e.self_cpu_time_total
        if us > 0:
            rows.append(dict(name=e.key, calls=e.count / steps, ms=us / 1e3 / steps))
    total = sum(r["ms"] for r in rows)
    rows.sort(key=lambda r: -r["ms"])
    for r in rows:
        r["share"] = r["ms"] / total if total else 0.0
    kind = "device time per kernel" if gpu else "self CPU time per op"
    return dict(kind=kind, per_call_ms=total, wall_ms=wall_ms, kernels=len(rows), rows=rows[:top])


def _cell(name: str, width: int = 110) -> str:
    name = name.replace("|", "\\|").replace("\n", " ")
    return name if len(name) <= width else name[: width - 3] + "..."


def section(workload: str, provider: str, median_ms: float | None, profile: dict | None, error: str = "") -> str:
    """One provider's table; ``% of the row``: of the row's median (so the rows' sum reads as the GPU busy)."""
    head = f"### {workload}: {provider}"
    if profile is None:
        return f"{head}\n\nno profile: {error}\n"
    busy = f"; {profile['kernels']} distinct, {profile['per_call_ms']:.3f} ms per call"
    if median_ms:
        busy += f" against a {median_ms:.3f} ms median: {100 * profile['per_call_ms'] / median_ms:.0f}% of it"
    if profile.get("wall_ms"):
        busy += f" (the profiled calls took {profile['wall_ms']:.3f} ms each, the profiler included)"
    lines = [head, "", f"{profile['kind']}{busy}.", "",
             "| kernel | calls | ms per call | % of kernels | % of the row |", "|---|---|---|---|---|"]
    for r in profile["rows"]:
        row_pct = f"{100 * r['ms'] / median_ms:.1f}%" if median_ms else "-"
        lines.append(f"| {_cell(r['name'])} | {r['calls']:g} | {r['ms']:.3f} | {100 * r['share']:.1f}% | {row_pct} |")
    return "\n".join(lines) + "\n"


def write(path: Path, title: str, sections: list[str]) -> None:
    """The whole file again (after each workload, so that a run cut short keeps the profiles it took)."""
    intro = ("Top kernels by time per call of each provider (torch.profiler, 3 calls after the timed ones); "
             "`% of the row`: of the row's median. On a GPU, kernels filling less than the median mean a GPU "
             "waiting for the host.")
    Path(path).write_text(f"# {title}\n\n{intro}\n\n" + "\n".join(sections))
