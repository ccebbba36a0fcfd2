"""How bench/speed.py times a closure: the first calls apart (compilation, autotuning, cuDNN's benchmark, graph
capture), then samples within the row's own budget, so that a slow provider is cut off with what it measured.

GPU: one pair of CUDA events per sample, L2 flushed before each (a 256 MB write), median and 20/80% quantiles.
CPU: the providers of a workload in turn, round after round (time_cpu), so that a noisy machine slows them alike.
"""
from __future__ import annotations

import signal
import statistics
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import torch

WARMUP_CALLS = 3  # after the first: compile-max records its CUDA graphs here, Triton finishes autotuning


@dataclass
class Budget:
    """One row's time: at least ``min_samples`` if ``seconds`` allow, up to ``max_samples``; the first call and
    warm-up may take ``first_call_s`` (compiling and autotuning), and then the row is given up."""
    min_samples: int
    max_samples: int
    seconds: float
    first_call_s: float


class FirstCallTooSlow(Exception):
    """The first calls (compile, autotune) ran past the row's limit."""


@contextmanager
def time_limit(seconds: float | None):
    """Raise FirstCallTooSlow in the main thread after ``seconds`` (Python code only: inductor and Triton compile
    in Python, so a compile is stopped at its next step)."""
    if not seconds or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def alarm(signum, frame):
        raise FirstCallTooSlow(f"first calls over the row's {seconds:.0f} s limit (compiling or autotuning)")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _sync(device_type: str) -> None:
    if device_type == "cuda":
        torch.cuda.synchronize()


def first_calls(fn, device_type: str, limit_s: float | None, warmup: int = WARMUP_CALLS) -> dict:
    """Seconds of the first call and of the warm-up calls after it."""
    with time_limit(limit_s):
        t = time.perf_counter()
        fn()
        _sync(device_type)
        first = time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(warmup):
            fn()
        _sync(device_type)
        warm = time.perf_counter() - t
    return dict(first_s=first, warm_s=warm, warm_call_s=warm / max(1, warmup))


def summary(ms: list, budget: Budget) -> dict:
    q = statistics.quantiles(ms, n=5) if len(ms) > 1 else [ms[0]] * 4
    out = dict(ms=statistics.median(ms), p20=q[0], p80=q[3], samples=len(ms))
    if len(ms) < budget.min_samples:
        out["cut"] = f"{len(ms)} of {budget.min_samples} samples in the row's {budget.seconds:.1f} s"
    return out


def time_gpu(fn, budget: Budget) -> dict:
    """First calls, peak memory of one call beyond what was allocated before it, then CUDA-event samples."""
    out = first_calls(fn, "cuda", budget.first_call_s)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    out["peak_mb"] = (torch.cuda.max_memory_allocated() - base) / 2**20
    flush = torch.empty(256 * 2**20, dtype=torch.int8, device="cuda")  # larger than any L2 here
    ms: list = []
    start = time.perf_counter()
    while len(ms) < budget.max_samples:
        left = budget.seconds - (time.perf_counter() - start)
        chunk = int(min(10, budget.max_samples - len(ms), max(1, left / max(out["warm_call_s"], 1e-6))))
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(chunk)]
        for begin, end in events:
            flush.zero_()
            begin.record()
            fn()
            end.record()
        torch.cuda.synchronize()
        ms += [begin.elapsed_time(end) for begin, end in events]
        spent = time.perf_counter() - start
        if spent >= budget.seconds or (len(ms) >= budget.min_samples and spent >= budget.seconds / 2):
            break
    del flush
    return out | summary(ms, budget)


def time_cpu(fns: dict, budget: Budget) -> dict:
    """{name: timing} of closures timed in turn, round after round (ratios hold on a noisy machine); a closure
    whose first calls fail or run past the limit gets {"error": ...} and the others go on."""
    out: dict = {}
    for name, fn in fns.items():
        try:
            out[name] = first_calls(fn, "cpu", budget.first_call_s) | dict(peak_mb=None)
        except Exception as e:  # noqa: BLE001 - one provider failing must not cost the others' rows
            out[name] = dict(error=e)
    live = {k: fn for k, fn in fns.items() if "error" not in out[k]}
    times: dict = {k: [] for k in live}
    start, rounds = time.perf_counter(), 0
    limit = budget.seconds * max(1, len(live))
    while live and rounds < budget.max_samples:
        rounds += 1
        for k, fn in live.items():
            t = time.perf_counter()
            fn()
            times[k].append((time.perf_counter() - t) * 1e3)
        spent = time.perf_counter() - start
        if rounds >= budget.min_samples and spent >= limit / 2 or spent >= limit:
            break
    for k, ms in times.items():
        out[k] |= summary(ms, budget)
    return out
