"""CUDA-graph capture of a benchmark closure, the same for every provider named ``<backend>-graph``, and of the
training step bench/train_probe.py times with --graph on.

torch.compile's max-autotune mode replays CUDA graphs of its own; capturing the eager model and the fused
backends the same way lets each be compared without its host (launch and dispatch) time. The closure must read
only tensors that stay put (the workload's input: a static buffer) and allocate nothing that outlives it.
"""
from __future__ import annotations

import torch


def captured(fn, warmup: int = 3, before_capture=None):
    """A closure that replays a CUDA graph of ``fn``; the first call warms ``fn`` up on a side stream (so that
    Triton autotuning, JIT compilation and cuDNN's benchmark happen before capture, as PyTorch's CUDA-graph notes
    ask, and an optimizer's state exists) and captures it, so that its cost is the row's first call.
    ``before_capture`` runs between the two: a training step's ``zero_grad(set_to_none=True)``, so that the
    captured backward writes fresh gradients (in the graph's pool) instead of adding to the warm-up's."""
    state: dict = {}

    def first():
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                fn()
        torch.cuda.current_stream().wait_stream(side)
        if before_capture is not None:
            before_capture()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            state["out"] = fn()  # kept: the graph's output lives in its memory pool
        state["graph"] = graph
        graph.replay()
        return state["out"]

    def replay():
        if "graph" not in state:
            return first()
        state["graph"].replay()
        return state["out"]

    return replay
