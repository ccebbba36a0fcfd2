"""CUDA-graph capture of a benchmark closure, the same for every provider named ``<backend>-graph``.

torch.compile's max-autotune mode replays CUDA graphs of its own; capturing the eager model and the fused
backends the same way lets each be compared without its host (launch and dispatch) time. The closure must read
only tensors that stay put (the workload's input: a static buffer) and allocate nothing that outlives it.
"""
from __future__ import annotations

import torch


def captured(fn, warmup: int = 3):
    """A closure that replays a CUDA graph of ``fn``; the first call warms ``fn`` up on a side stream (so that
    Triton autotuning, JIT compilation and cuDNN's benchmark happen before capture, as PyTorch's CUDA-graph notes
    ask) and captures it, so that its cost is the row's first call."""
    state: dict = {}

    def first():
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                fn()
        torch.cuda.current_stream().wait_stream(side)
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
