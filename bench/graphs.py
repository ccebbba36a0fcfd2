"""CUDA-graph capture of a benchmark closure, the same for every provider named ``<backend>-graph``, and of the
training step bench/train_probe.py times with --graph on.

torch.compile's max-autotune mode replays CUDA graphs of its own; capturing the eager model and the fused
backends the same way lets each be compared without its host (launch and dispatch) time. The closure must read
only tensors that stay put (the workload's input: a static buffer) and allocate nothing that outlives it.
"""
from __future__ import annotations

from mdrn_fast.cuda_graph import GraphedStep


def captured(fn, warmup: int = 3, before_capture=None):
    """A closure that replays a CUDA graph of ``fn`` (mdrn_fast.cuda_graph.GraphedStep); its first call also does
    the warm-up calls and the capture, so that their cost is the row's first call. ``before_capture``: as
    GraphedStep's (a training step's ``zero_grad(set_to_none=True)``)."""
    step = GraphedStep(fn, warmup, before_capture)

    def replay():
        while True:
            out = step()
            if step.captured:
                return out

    return replay
