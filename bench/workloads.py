"""What bench/speed.py measures: each workload builds, per provider, a closure to time, and knows its bytes.

Providers: "torch" (eager reference), "torch-cl" (the same in channels_last; whole model only), "compile" and "compile-max" (torch.compile of the reference, default and
max-autotune modes), and the fused backends "triton", "cuda", "cpu" (through mdrn_fast's registry). FLOPs are counted once on the reference with
torch's FlopCounterMode, so every provider is held to the same floor.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

import mdrn_fast
from mdrn_fast import ops

FUSED = ("triton", "cuda", "cpu")
PROVIDERS = ("torch", "torch-cl", "compile", "compile-max") + FUSED  # torch-cl: eager, channels_last
PEERS = ("torch", "torch-cl", "compile", "compile-max")  # what the fused backends are measured against
COMPILE_MODES = {"compile": "default", "compile-max": "max-autotune"}


class Skip(Exception):
    """This provider cannot run this workload here; the message says why."""


@dataclass
class Workload:
    name: str
    group: str  # "model" | "op" | "distill"
    build: Callable[[str], Callable[[], object]]  # provider -> closure
    bytes: float  # minimum traffic: inputs read once, outputs written once
    low_precision: bool = False


def _check(provider: str, device: torch.device, group: str = "model") -> None:
    """Raise Skip, with the reason, where ``provider`` cannot run on ``device`` here."""
    if provider == "torch-cl" and group != "model":
        raise Skip("eager channels_last is measured on the whole model")
    if provider == "compile-max" and device.type != "cuda":
        raise Skip("max-autotune tunes GPU kernels; on the CPU 'compile' is the torch.compile provider")
    if provider in FUSED:
        reason = mdrn_fast.registry.unavailable_reason(provider)
        if reason:
            raise Skip(reason)
        if provider == "triton" and device.type == "cpu":
            raise Skip("the Triton CPU interpreter is a test vehicle, not a speed provider")
        if provider == "cpu" and device.type != "cpu":
            raise Skip(f"the cpu backend runs on CPU tensors, not {device.type}")
        if provider == "cuda" and device.type != "cuda":
            raise Skip(f"the cuda backend runs on CUDA tensors, not {device.type}")


def _compiled(fn, provider: str):
    return torch.compile(fn, mode=COMPILE_MODES[provider]) if provider in COMPILE_MODES else fn


def model_workloads(presets, shapes, device, dtypes, modes=("infer", "fwd+bwd", "train")) -> list[Workload]:
    out = []
    for preset in presets:
        for shape in shapes:
            for dtype in dtypes:
                for mode in modes:
                    out.append(_model_workload(preset, shape, device, dtype, mode))
    return out


def _model_workload(preset, shape, device, dtype, mode) -> Workload:
    low = dtype == torch.bfloat16
    model0 = mdrn_fast.mdrn(preset, in_channels=shape[1], backend="torch").to(device)
    weights = sum(p.numel() * 4 for p in model0.parameters())
    io = 2 * torch.Size(shape).numel() * 4
    name = f"{preset} {mode} {'x'.join(map(str, shape))} {'bf16' if low else 'fp32'}"

    def build(provider):
        _check(provider, device)
        torch.manual_seed(0)
        model = mdrn_fast.mdrn(preset, in_channels=shape[1], backend="torch").to(device)
        if provider in FUSED:
            model.set_backend(provider)
        y = torch.rand(shape, device=device)
        if provider == "torch-cl":
            model = model.to(memory_format=torch.channels_last)
            y = y.contiguous(memory_format=torch.channels_last)
        run = _compiled(model, provider)
        opt = torch.optim.Adam(model.parameters(), 1e-4) if mode == "train" else None

        def step():
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=low):
                if mode == "infer":
                    with torch.no_grad():
                        return run(y)
                loss = (run(y).float() - y).abs().mean()
            loss.backward()
            if opt is not None:
                opt.step()
                opt.zero_grad(set_to_none=True)
            return loss

        return step

    return Workload(name, "model", build, weights * (1 if mode == "infer" else 4) + io, low)


def _op_args(op: str, n: int, c: int, hw: int, device) -> dict:
    """The op's example inputs (mdrn_fast.ops.example: the same the tests run) at [n, c, hw, hw], on device."""
    name, _, scale = op.partition("_s")
    args = ops.example(name, (n, c, hw, hw), int(scale or 2), torch.Generator().manual_seed(0))
    return {k: [t.to(device) for t in v] if isinstance(v, list) else v.to(device) if isinstance(v, torch.Tensor)
            else v for k, v in args.items()}


def _op_names():
    """Every public op, at scales 2 and 4 for those that take a scale (degrade_s2, degrade_s4, ...)."""
    for op in ops.OPS:
        takes_scale = "scale" in ops.example(op, (1, 4, 8, 8))
        yield from (f"{op}_s{s}" for s in (2, 4)) if takes_scale else (op,)


OP_NAMES = tuple(_op_names())


def _tensors(v):
    return v if isinstance(v, list) else [v] if isinstance(v, torch.Tensor) else []


def op_workloads(n, c, hw, device, modes=("fwd", "fwd+bwd")) -> list[Workload]:
    out = []
    for op in OP_NAMES:
        for mode in modes:
            if op == "add_noise" and mode != "fwd":
                continue
            args = _op_args(op, n, c, hw, device)
            fn_name = op.split("_s")[0]
            out_bytes = getattr(ops, fn_name)(**args, backend="torch").nbytes
            in_bytes = sum(t.nbytes for v in args.values() for t in _tensors(v))
            traffic = in_bytes + out_bytes if mode == "fwd" else 3 * in_bytes + 2 * out_bytes
            out.append(Workload(f"{op} {mode} {n}x{c}x{hw}x{hw}", "op", _op_builder(fn_name, args, mode, device),
                                traffic))
    return out


def _op_builder(fn_name, args, mode, device):
    def build(provider):
        _check(provider, device, "op")
        backend = "torch" if provider in COMPILE_MODES else provider
        leaves = {k: ([t.clone().requires_grad_(mode != "fwd") for t in v] if isinstance(v, list)
                      else v.clone().requires_grad_(mode != "fwd") if isinstance(v, torch.Tensor) else v)
                  for k, v in args.items()}
        fn = getattr(ops, fn_name)

        def call(**kw):
            return fn(**kw, backend=backend)

        call = _compiled(call, provider)
        try:
            call(**leaves)
        except mdrn_fast.BackendError as e:
            raise Skip(str(e)) from None

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
