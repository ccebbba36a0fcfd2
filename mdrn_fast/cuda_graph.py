"""A step of work replayed from one CUDA graph at fixed shapes: the training loop's whole step (forward, loss,
backward, a capturable fused Adam) with ``--graph``, and the benchmark's ``<backend>-graph`` rows.

A replay launches every kernel of the step at once, so the step costs the GPU's time only, not Python's and the
dispatcher's per kernel (hundreds per step for a small network at a small batch).
"""
from __future__ import annotations

import torch


class GraphedStep:
    """``fn(*inputs)`` replayed from a CUDA graph. Each call copies its inputs into static buffers (made from the
    first call's: same shapes, strides and device) and runs ``fn`` on those. The first ``warmup`` calls run it
    eagerly on a side stream (so that cuDNN's benchmark, Triton's autotuning and JIT compilation happen before
    capture, and an optimizer's state exists, as PyTorch's CUDA-graph notes ask); the next one captures it and
    replays the graph; later calls replay it. Each call returns ``fn``'s output, which after capture is the
    graph's: the same tensors every call, overwritten by the next one (clone what must outlive it).

    ``before_capture`` runs once, just before capture (e.g. a ``zero_grad(set_to_none=True)``, so that the captured
    backward writes fresh gradients into the graph's pool). A capture that fails (an op that reads the device on
    the host, say) raises, unless ``on_failure`` is given: then it is called with the reason (one line) and the
    step stays eager from then on. Nothing of a failed capture ran, so that call still does its step of work."""

    def __init__(self, fn, warmup: int = 3, before_capture=None, on_failure=None):
        self.fn, self.warmup, self.before_capture, self.on_failure = fn, warmup, before_capture, on_failure
        self.calls, self.static, self.side, self.graph, self.output, self.failure = 0, None, None, None, None, None

    @property
    def captured(self) -> bool:
        return self.graph is not None

    def __call__(self, *inputs):
        if self.static is None:
            self.static = [x.clone() for x in inputs]  # clone keeps the strides (a channels-last input stays so)
        else:
            for buffer, x in zip(self.static, inputs, strict=True):
                buffer.copy_(x)
        self.calls += 1
        if self.graph is not None:
            self.graph.replay()
            return self.output
        if self.failure is not None:
            return self.fn(*self.static)
        if self.calls <= self.warmup:
            return self._on_side_stream()
        return self._capture()

    def _on_side_stream(self):
        self.side = self.side or torch.cuda.Stream()
        self.side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.side):
            out = self.fn(*self.static)
        torch.cuda.current_stream().wait_stream(self.side)
        return out

    def _capture(self):
        if self.before_capture is not None:
            self.before_capture()
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                output = self.fn(*self.static)
        except Exception as e:  # noqa: BLE001 - whatever stopped the capture, the step can run without it
            if self.on_failure is None:
                raise
            lines = str(e).strip().splitlines()
            self.failure = f"{type(e).__name__}: {lines[0][:200] if lines else ''}"
            self.on_failure(self.failure)
            if self.before_capture is not None:
                self.before_capture()
            return self.fn(*self.static)
        self.graph, self.output = graph, output
        graph.replay()
        return output
