"""Training throughput of one configuration on this machine, to size a training run from a measurement.

For each backend, memory format, recompute setting and graph setting: megapixels per second of the whole
training step (patches drawn on the device, noise, forward and backward under autocast, Adam), and the share of
that step spent outside the model (drawing patches and noise), both timed after a warm-up with the device
synchronized, and the peak memory of the step on a GPU. With --graph on, the model's part of the step (forward,
loss, backward, a capturable fused Adam) replays from one CUDA graph (mdrn_fast.cuda_graph), the patches and noise
drawn outside it into its static input buffers. One JSON line per combination; a combination that fails prints
its error and the others go on.

    python bench/train_probe.py --train-set Train400 --patch 96 --batch 64
    python bench/train_probe.py --backends torch,triton --recompute off,on --patch 256 --batch 16
    python bench/train_probe.py --backends torch,cuda,triton --graph off,on
    python bench/train_probe.py --device cpu --preset mdrn-tiny --patch 16 --batch 2 --steps 2   # a rehearsal
"""
from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from mdrn_fast import ops
from mdrn_fast.cuda_graph import GraphedStep
from mdrn_fast.device_patches import DevicePatches
from mdrn_fast.models import mdrn


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def probe(args, backend: str, memory_format: torch.memory_format, recompute: bool, graph: bool = False) -> dict:
    device = torch.device(args.device)
    if graph and device.type != "cuda":
        raise ValueError("CUDA graphs need a CUDA device")
    torch.manual_seed(0)
    model = mdrn(args.preset, in_channels=3 if args.color else 1, backend=backend)
    model = model.to(device, memory_format=memory_format).train()
    model.recompute = recompute
    model.channels_last = memory_format == torch.channels_last  # the format asked for, whatever "auto" would pick
    # as training runs it; a captured step needs its step count on the device
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=device.type == "cuda", capturable=graph)
    patches = DevicePatches(args.train_set, model.in_channels, args.patch, 0, args.data, device)
    amp = device.type == "cuda"
    torch.backends.cudnn.benchmark = True  # as training does: one shape, cuDNN's fastest kernels

    def data(step):
        clean = patches.batch(step, args.batch).contiguous(memory_format=memory_format)
        return clean, ops.add_noise(clean, 25.0, seed=step, backend="torch")

    def model_step(clean, noisy):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp, cache_enabled=not graph):
            loss = F.l1_loss(model(noisy), clean)
        loss.backward()
        opt.step()

    if graph:  # GraphedStep copies each step's patches and noise into the graph's fixed input buffers
        graphed = GraphedStep(model_step, before_capture=lambda: opt.zero_grad(set_to_none=True))

        def train_step(step):
            graphed(*data(step))
    else:
        def train_step(step):
            opt.zero_grad(set_to_none=True)
            model_step(*data(step))

    def timed(fn) -> float:
        _sync(device)
        start = time.perf_counter()
        for step in range(args.steps):
            fn(step)
        _sync(device)
        return (time.perf_counter() - start) / args.steps

    for step in range(args.warmup):
        train_step(step)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    step_s = timed(train_step)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    data_s = timed(data)
    pixels = args.batch * args.patch ** 2
    return {"backend": backend, "memory_format": str(memory_format).removeprefix("torch."), "recompute": recompute,
            "graph": graph,
            "peak_mib": round(peak, 1) if peak is not None else None, "ms_per_step": round(step_s * 1e3, 3),
            "mpx_per_s": float(f"{pixels / step_s / 1e6:.3g}"), "outside_model": round(data_s / step_s, 4),
            "preset": args.preset, "patch": args.patch, "batch": args.batch, "device": str(device),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                    help="where to train: cuda (the default where a GPU is visible) or cpu")
    ap.add_argument("--preset", default="mdrn-base")
    ap.add_argument("--color", action="store_true")
    ap.add_argument("--backends", default="torch", help="comma-separated, of torch, triton, cuda, cpu")
    ap.add_argument("--recompute", default="off", help="comma-separated, of off, on")
    ap.add_argument("--train-set", default="Train400")
    ap.add_argument("--data", default=None, help="data folder (default: $MDRN_FAST_DATA)")
    ap.add_argument("--patch", type=int, default=96)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--formats", default="contiguous_format,channels_last")
    ap.add_argument("--graph", default="off", help="comma-separated, of off, on (CUDA only)")
    args = ap.parse_args(argv)
    for backend in args.backends.split(","):
        for name in args.formats.split(","):
            for recompute in args.recompute.split(","):
                for graph in args.graph.split(","):
                    try:
                        row = probe(args, backend, getattr(torch, name), recompute == "on", graph == "on")
                    except Exception as e:  # noqa: BLE001 - one failing combination costs its own line only
                        row = {"backend": backend, "memory_format": name, "recompute": recompute == "on",
                               "graph": graph == "on",
                               "error": f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"}
                    print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
