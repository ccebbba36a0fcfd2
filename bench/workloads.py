"""What bench/speed.py measures: each workload builds, per provider, a closure to time, and knows its bytes.

Providers: "torch" (eager reference), "torch-cl" (the same in channels_last; the model and the 3x3 layer),
"compile" and "compile-max" (torch.compile of the reference, default and max-autotune modes), the fused backends
"triton", "cuda", "cpu" (through mdrn_fast's registry), and "<backend>-graph" ("torch-graph", "triton-graph",
"cuda-graph"): that backend's step (inference, or a training step) captured in a CUDA graph by the bench
(bench/graphs.py), the same way for all, since max-autotune replays graphs of its own; "cuda-nchw": the cuda
backend's model with its maps left NCHW (MDRN.channels_last = False), beside "cuda", which runs them
channels-last. FLOPs are counted once on the reference with torch's FlopCounterMode, so every provider is held
to the same floor.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

import mdrn_fast
from mdrn_fast import ops

from graphs import captured

FUSED = ("triton", "cuda", "cpu")
GRAPHED = {"torch-graph": "torch", "triton-graph": "triton", "cuda-graph": "cuda"}  # provider -> what it captures
NCHW = {"cuda-nchw": "cuda"}  # provider -> the backend it runs with the model's maps NCHW
PROVIDERS = ("torch", "torch-cl", "torch-graph", "compile", "compile-max", "triton", "triton-graph", "cuda",
             "cuda-nchw", "cuda-graph", "cpu")
PEERS = ("torch", "torch-cl", "torch-graph", "compile", "compile-max")  # what the fused backends are measured against
COMPILE_MODES = {"compile": "default", "compile-max": "max-autotune"}
COMPILE_BACKEND = "inductor"  # speed.py --compile-backend: "aot_eager" checks the wiring without code generation
GROUPS = ("model", "layer", "op", "distill")  # in the order they run: the model rows decide the most
LEAKY_SLOPE = 0.2
LAYER_VARIANTS = {"lrelu": "bias+lrelu", "bias": "bias", "residual": "bias+residual"}  # as body1, body2, fusion 3x3


class Skip(Exception):
    """This provider cannot run this workload here; the message says why."""


@dataclass
class Workload:
    name: str
    group: str  # one of GROUPS
    build: Callable[[str], Callable[[], object]]  # provider -> closure
    bytes: float  # minimum traffic: inputs read once, outputs written once
    low_precision: bool = False
    inference: bool = False  # no autograd
    design: dict | None = None  # model rows: what floors.design_floors needs (config, shape, bytes per element)
    skips: dict = field(default_factory=dict)  # provider -> why this selection leaves it out


def base_of(provider: str) -> str:
    """The backend (or the reference) a provider runs."""
    return {**GRAPHED, **NCHW}.get(provider, provider)


def _check(provider: str, device: torch.device, group: str = "model") -> None:
    """Raise Skip, with the reason, where ``provider`` cannot run on ``device`` here."""
    base = base_of(provider)
    if provider == "torch-cl" and group not in ("model", "layer"):
        raise Skip("eager channels_last is measured on the whole model and the 3x3 layer")
    if provider in NCHW and group != "model":
        raise Skip("the model's layout is measured on the whole model (an op keeps whichever layout it gets)")
    if provider in GRAPHED:
        if device.type != "cuda":
            raise Skip("CUDA graphs need a CUDA device")
        if group not in ("model", "layer"):
            raise Skip("graph capture is measured on the model (inference and training) and the 3x3 layer")
    if provider == "compile-max" and device.type != "cuda":
        raise Skip("max-autotune tunes GPU kernels; on the CPU 'compile' is the torch.compile provider")
    if base in FUSED:
        if base == "triton" and device.type == "cpu":
            raise Skip("the Triton CPU interpreter is a test vehicle, not a speed provider")
        if base == "cpu" and device.type != "cpu":
            raise Skip(f"the cpu backend runs on CPU tensors, not {device.type}")
        if base == "cuda" and device.type != "cuda":
            raise Skip(f"the cuda backend runs on CUDA tensors, not {device.type}")
        reason = mdrn_fast.registry.unavailable_reason(base)
        if reason:
            raise Skip(reason)


def _compiled(fn, provider: str):
    if provider not in COMPILE_MODES:
        return fn
    torch._dynamo.reset()  # a fresh cache: else the rows' shared code objects hit dynamo's recompile limit
    mode = dict(mode=COMPILE_MODES[provider]) if COMPILE_BACKEND == "inductor" else {}
    return torch.compile(fn, backend=COMPILE_BACKEND, dynamic=False, **mode)


def _graphed(step, provider: str, before_capture=None):
    return captured(step, before_capture=before_capture) if provider in GRAPHED else step


def model_workloads(presets, shapes, device, dtypes, modes=("infer", "fwd+bwd", "train"),
                    skips_train: dict | None = None) -> list[Workload]:
    """Inference rows first, then forward+backward, then the train step (the order they run in); ``skips_train``:
    providers the training rows leave out, with the reason."""
    out = [_model_workload(preset, shape, device, dtype, mode)
           for mode in modes for preset in presets for shape in shapes for dtype in dtypes]
    for w in out:
        if not w.inference:
            w.skips.update(skips_train or {})
    return out


def _model_workload(preset, shape, device, dtype, mode) -> Workload:
    low = dtype == torch.bfloat16
    infer = mode == "infer"
    model0 = mdrn_fast.mdrn(preset, in_channels=shape[1], backend="torch")
    weights = sum(p.numel() * 4 for p in model0.parameters())
    io = 2 * torch.Size(shape).numel() * 4
    name = f"{preset} {mode} {'x'.join(map(str, shape))} {'bf16' if low else 'fp32'}"
    design = dict(config=model0.config(), shape=tuple(shape), bytes_per_element=2 if low else 4, train=not infer)

    def build(provider):
        _check(provider, device, "model")
        base = base_of(provider)
        torch.manual_seed(0)
        model = mdrn_fast.mdrn(preset, in_channels=shape[1], backend="torch").to(device)
        model.train(not infer)
        if hasattr(model, "cuda_graphs"):
            model.cuda_graphs = False  # the bench captures graphs itself, the same way for every provider
        if base in FUSED:
            model.set_backend(base)
        if provider in NCHW:
            model.channels_last = False
        y = torch.rand(shape, device=device)
        if provider == "torch-cl":
            model = model.to(memory_format=torch.channels_last)
            y = y.contiguous(memory_format=torch.channels_last)
        run = _compiled(model, base)
        graphed = provider in GRAPHED
        # a captured step needs an optimizer whose step count lives on the device
        opt = (torch.optim.Adam(model.parameters(), 1e-4, fused=True, capturable=True) if graphed
               else torch.optim.Adam(model.parameters(), 1e-4)) if mode == "train" else None
        cache = not graphed  # autocast's weight cache must be off under graph capture

        def step():
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=low, cache_enabled=cache):
                if infer:
                    with torch.no_grad():
                        return run(y)
                loss = (run(y).float() - y).abs().mean()
            loss.backward()
            if opt is not None:
                opt.step()
                if not graphed:  # a captured step writes its gradients afresh (graphs.captured's before_capture)
                    opt.zero_grad(set_to_none=True)
            return loss

        return _graphed(step, provider, None if infer else lambda: model.zero_grad(set_to_none=True))

    return Workload(name, "model", build, weights * (1 if infer else 4) + io, low, infer, design)


def layer_workloads(shapes, device, dtypes, variants=("lrelu",)) -> list[Workload]:
    """One 3x3 convolution layer as the network's body1 (conv + bias + LeakyReLU), "bias" (conv + bias, as body2)
    or "residual" (conv + bias + a residual map, as the fusion 3x3): mdrn_fast.ops.conv3x3 against cuDNN."""
    return [_layer_workload(shape, device, dtype, v) for v in variants for shape in shapes for dtype in dtypes]


def _layer_workload(shape, device, dtype, variant) -> Workload:
    n, c, h, w = shape
    low = dtype == torch.bfloat16
    slope = LEAKY_SLOPE if variant == "lrelu" else None
    with_residual = variant == "residual"
    el = torch.empty((), dtype=dtype).element_size()
    maps = 2 + with_residual  # input, output, and the residual read
    name = f"conv3x3+{LAYER_VARIANTS[variant]} {'x'.join(map(str, shape))} {'bf16' if low else 'fp32'}"

    def eager(x, weight, bias, residual):
        y = F.conv2d(x, weight, bias, padding=1)
        y = F.leaky_relu(y, slope) if slope is not None else y
        return y + residual if residual is not None else y

    def build(provider):
        _check(provider, device, "layer")
        base = base_of(provider)
        g = torch.Generator().manual_seed(0)
        x = torch.randn(n, c, h, w, generator=g)
        weight = torch.randn(c, c, 3, 3, generator=g) / (9 * c) ** 0.5
        bias = torch.randn(c, generator=g) * 0.1
        res = torch.randn(n, c, h, w, generator=g) if with_residual else None
        # the fused op and torch.compile get channels_last maps: the layout a fused network keeps between layers;
        # eager NCHW is how the model runs today
        fmt = torch.contiguous_format if provider in ("torch", "torch-graph") else torch.channels_last
        x, weight = (t.to(device, dtype).contiguous(memory_format=fmt) for t in (x, weight))
        bias = bias.to(device, dtype)
        res = res.to(device, dtype).contiguous(memory_format=fmt) if res is not None else None
        if base in FUSED:
            if not hasattr(ops, "conv3x3"):
                raise Skip("mdrn_fast.ops.conv3x3 is not in this tree yet")
            fn = lambda: ops.conv3x3(x, weight, bias, slope, res, backend=base)  # noqa: E731
        else:
            run = _compiled(eager, provider)
            fn = lambda: run(x, weight, bias, res)  # noqa: E731

        def step():
            with torch.no_grad():
                return fn()

        return _graphed(step, provider)

    return Workload(name, "layer", build, maps * n * c * h * w * el + c * c * 9 * el, low, True)


_SCALED = re.compile(r"^(?P<op>.+)_s(?P<scale>\d+)$")  # "degrade_s4": degrade at scale 4


def _split(op: str) -> tuple[str, int]:
    m = _SCALED.match(op)
    return (m["op"], int(m["scale"])) if m and m["op"] in ops.OPS else (op, 2)


def _op_args(op: str, n: int, c: int, hw: int, device) -> dict:
    """The op's example inputs (mdrn_fast.ops.example: the same the tests run) at [n, c, hw, hw], on device."""
    name, scale = _split(op)
    args = ops.example(name, (n, c, hw, hw), scale, torch.Generator().manual_seed(0))
    return {k: [t.to(device) for t in v] if isinstance(v, list) else v.to(device) if isinstance(v, torch.Tensor)
            else v for k, v in args.items()}


def op_names() -> list[str]:
    """Every public op, at scales 2 and 4 for those that take a scale (degrade_s2, degrade_s4, ...). Built from
    ops.OPS each time, so a new op gets rows of its own; one whose example fails still gets them (as errors)."""
    out = []
    for op in ops.OPS:
        try:
            takes_scale = "scale" in ops.example(op, (1, 4, 8, 8))
        except Exception:  # noqa: BLE001 - reported on the op's own rows
            takes_scale = False
        out += [f"{op}_s{s}" for s in (2, 4)] if takes_scale else [op]
    return out


def _tensors(v):
    if isinstance(v, (list, tuple)):
        return [t for x in v for t in _tensors(x)]
    return [v] if isinstance(v, torch.Tensor) else []


def op_workloads(n, c, hw, device, modes=("fwd", "fwd+bwd")) -> list[Workload]:
    out = []
    for op in op_names():
        for mode in modes:
            if op == "add_noise" and mode != "fwd":
                continue
            name = f"{op} {mode} {n}x{c}x{hw}x{hw}"
            try:
                args = _op_args(op, n, c, hw, device)
                fn_name = _split(op)[0]
                out_bytes = sum(t.nbytes for t in _tensors(getattr(ops, fn_name)(**args, backend="torch")))
            except Exception as e:  # noqa: BLE001 - a broken op costs its own rows, not the run
                out.append(Workload(name, "op", _failing(e), 0.0))
                continue
            in_bytes = sum(t.nbytes for v in args.values() for t in _tensors(v))
            traffic = in_bytes + out_bytes if mode == "fwd" else 3 * in_bytes + 2 * out_bytes
            out.append(Workload(name, "op", _op_builder(fn_name, args, mode, device), traffic, inference=mode == "fwd"))
    return out


def _failing(error: Exception):
    def build(provider):
        raise RuntimeError(f"building the workload failed: {type(error).__name__}: {error}")

    return build


def _op_builder(fn_name, args, mode, device):
    def build(provider):
        _check(provider, device, "op")
        backend = "torch" if provider in COMPILE_MODES else provider
        leaves = {k: ([t.clone().requires_grad_(mode != "fwd") for t in v] if isinstance(v, list)
                      else v.clone().requires_grad_(mode != "fwd")
                      if isinstance(v, torch.Tensor) and v.is_floating_point() else v)
                  for k, v in args.items()}
        fn = getattr(ops, fn_name)

        def call(**kw):
            return fn(**kw, backend=backend)

        call = _compiled(call, provider)
        try:
            out = call(**leaves)
        except mdrn_fast.BackendError as e:
            raise Skip(str(e)) from None
        if mode != "fwd" and not (isinstance(out, torch.Tensor) and out.requires_grad):
            raise Skip(f"{fn_name} has no gradient to time")

        def step():
            if mode == "fwd":
                with torch.no_grad():
                    return call(**leaves)
            out = call(**leaves)
            out.backward(torch.ones_like(out))
            return out

        return step

    return build


# Byte floor of one forward + backward, in feature-sized float32 passes: every loss reads fs and ft forward;
# backward, l1 / l2 / fakd read both again and write dfs, at reads fs and writes dfs (the maps are [N, HW]).
_DISTILL_PASSES = {"l1": 5, "l2": 5, "at": 4, "fakd": 5}


def distill_workloads(shapes, device) -> list[Workload]:
    from mdrn_fast.distill import feature_loss

    out = []
    for shape in shapes:
        for kind, passes in _DISTILL_PASSES.items():

            def build(provider, shape=shape, kind=kind):
                _check(provider, device, "distill")
                fs = torch.randn(shape, device=device, requires_grad=True)
                ft = torch.randn(shape, device=device)
                backend = "torch" if provider in COMPILE_MODES else provider
                fn = _compiled(lambda: feature_loss(fs, ft, kind=kind, backend=backend), provider)

                def step():
                    loss = fn()
                    loss.backward()
                    return loss

                return step

            nbytes = passes * torch.Size(shape).numel() * 4
            out.append(Workload(f"distill {kind} fwd+bwd {'x'.join(map(str, shape))}", "distill", build, nbytes))
    return out
