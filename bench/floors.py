"""The hardware limit a workload is measured against: floor time = max(FLOPs / peak FLOP/s, bytes / peak B/s).

GPU peaks are the vendors' dense (no sparsity) datasheet figures; for a CPU, or a GPU not in the table, the
peaks are measured here (a large matmul and a large copy), which makes the floor optimistic-but-real.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

# name fragment -> (bf16 tensor TFLOP/s, tf32 tensor TFLOP/s, fp32 TFLOP/s (non-tensor-core), memory TB/s)
GPU_PEAKS = {
    "H100 SXM": (989.0, 494.7, 67.0, 3.35),   # NVIDIA H100 datasheet, SXM5
    "H100 PCIe": (756.0, 378.0, 51.0, 2.0),   # NVIDIA H100 datasheet, PCIe
    "H100": (989.0, 494.7, 67.0, 3.35),       # "NVIDIA H100 80GB HBM3" reports no form factor: the SXM part
    "H200": (989.0, 494.7, 67.0, 4.8),        # NVIDIA H200 datasheet, SXM
    "A100": (312.0, 156.0, 19.5, 2.04),       # NVIDIA A100 datasheet, SXM 80GB
}


def _measure(device: torch.device) -> tuple[float, float]:
    """(FLOP/s of a large fp32 matmul, bytes/s of a large copy) on ``device``."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    a = torch.randn(2048, 2048, device=device)
    src = torch.empty(64 * 2**20 // 4, device=device)
    dst = torch.empty_like(src)
    best_mm = best_cp = float("inf")
    for _ in range(5):
        sync(); t = time.perf_counter(); a @ a; sync(); best_mm = min(best_mm, time.perf_counter() - t)
        sync(); t = time.perf_counter(); dst.copy_(src); sync(); best_cp = min(best_cp, time.perf_counter() - t)
    return 2 * 2048**3 / best_mm, 2 * src.numel() * 4 / best_cp


def _copy_rate(device: torch.device, mb: int = 1024) -> float:
    """Bytes/s (read + written) of the best of five device-to-device copies of ``mb`` MB: far over any L2."""
    src = torch.empty(mb * 2**20 // 4, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    best = float("inf")
    for _ in range(5):
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        dst.copy_(src)
        end.record()
        end.synchronize()
        best = min(best, begin.elapsed_time(end) / 1e3)
    return 2 * src.numel() * 4 / best


def device_peaks(device: torch.device) -> dict:
    """{"name", "flops_bf16", "flops_tf32", "flops_fp32", "bytes_per_s", "source"} for the device; for a GPU of
    the table also "measured_bytes_per_s" (a large copy), printed beside the datasheet figure the floors use."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, (bf16, tf32, fp32, tbs) in GPU_PEAKS.items():
            if key in name:
                return dict(name=name, device=str(device), flops_bf16=bf16 * 1e12, flops_tf32=tf32 * 1e12,
                            flops_fp32=fp32 * 1e12, bytes_per_s=tbs * 1e12, source=f"datasheet ({key})",
                            measured_bytes_per_s=_copy_rate(device))
    else:
        import platform

        name = f"CPU {platform.processor() or platform.machine()} x{torch.get_num_threads()} threads"
    flops, bw = _measure(device)
    return dict(name=name, device=str(device), flops_bf16=flops, flops_tf32=flops, flops_fp32=flops,
                bytes_per_s=bw, source="measured (matmul, copy; smaller working sets: a copy or read of their size)")


def floor_seconds(flops: float, bytes_moved: float, peaks: dict, low_precision: bool) -> float:
    """bf16 work against the bf16 peak; fp32 work against the TF32 peak where TF32 is allowed (the bench sets
    one switch for all providers), else the plain fp32 peak. Bytes against the memory peak, or against the
    measured rate of a copy or read of the same size where that is higher (a working set that stays in a cache)."""
    if low_precision:
        peak = peaks["flops_bf16"]
    else:
        peak = peaks["flops_tf32"] if torch.backends.cudnn.allow_tf32 else peaks["flops_fp32"]
    rate = max(peaks["bytes_per_s"], working_set_rate(bytes_moved, peaks["device"]) if "device" in peaks else 0.0)
    return max(flops / peak, bytes_moved / rate)


_RATES: dict[tuple[str, int], float] = {}


def working_set_rate(bytes_moved: float, device: str) -> float:
    """The fastest a memory-bound op moving ``bytes_moved`` (rounded up to whole pages) can go when its data stays
    in a cache, as a benchmark's repeated calls see it: bytes/s of the best of many (0.2 s of) copies of that
    size (half read, half written) or sums over that size (all read), whichever is faster. Measured once per
    size."""
    size = max(1 << 16, -(-int(bytes_moved) // 4096) * 4096)
    key = (device, size)
    if key not in _RATES:
        dev = torch.device(device)
        sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
        whole = torch.zeros(size // 4, device=dev)  # float32, size bytes
        src, dst = whole[: size // 8], torch.empty(size // 8, device=dev)

        def best(fn) -> float:
            fn()
            fastest, spent, runs = float("inf"), 0.0, 0
            while runs < 10 or (spent < 0.1 and runs < 10_000):  # the best of many: a busy moment must not set it
                sync(); t = time.perf_counter(); fn(); sync()
                took = time.perf_counter() - t
                fastest, spent, runs = min(fastest, took), spent + took, runs + 1
            return fastest

        _RATES[key] = size / min(best(lambda: dst.copy_(src)), best(whole.sum))
    return _RATES[key]


# Design floors: the full-resolution maps each design of MDRN's forward must move through device memory.
#
# A "map" is one full-resolution C-channel activation, N*C*H*W elements; a map at 1/s resolution counts 1/s^2,
# the image (in_channels) in_channels/C. Each kernel reads each of its inputs once and writes each of its
# outputs once (on-chip reuse inside a kernel is perfect, halos are free, weights are not counted: they are
# under 1 MB). The designs differ only in which intermediate maps reach memory. bench/README.md lists the
# per-block counts and how they compare with the GPU plan's figures.


@dataclass(frozen=True)
class Kernel:
    name: str
    reads: tuple  # ((map, size in maps), ...)
    writes: tuple
    saved: tuple = ()  # the maps its backward reads besides its outputs' gradients (inputs for weight gradients,
    # outputs for the LeakyReLU mask)
    grad: bool = True  # False for the attention mean: its gradient, one number per channel, is folded into the
    # attention's own


def _branch_kernels(p: str, x: str, scales) -> list:
    """Degrade and the low-resolution 3x3 of each scale, as their own kernels (layer and composed designs)."""
    out = []
    for s in scales:
        a = 1 / s**2
        out += [Kernel(f"{p}degrade{s}", ((x, 1),), ((f"{p}d{s}", a),), (x, f"{p}d{s}")),
                Kernel(f"{p}mid{s}", ((f"{p}d{s}", a),), ((f"{p}h{s}", a),), (f"{p}d{s}", f"{p}h{s}"))]
    return out


def _layer(blocks: int, scales, img: float) -> list:
    """One kernel per layer, its bias / LeakyReLU / residual fused in; the attention mean a pass of its own (a
    reduction over the whole map before anything can be scaled); the network fusion 1x1 reads the B block
    outputs kept until the end."""
    ks = [Kernel("head", (("img", img),), (("f0", 1),), ("img",))]
    x, outs = "f0", []
    for i in range(blocks):
        p = f"b{i}."
        ks.append(Kernel(p + "body1", ((x, 1),), ((p + "t", 1),), (x, p + "t")))
        ks.append(Kernel(p + "body2", ((p + "t", 1),), ((p + "b", 1),), (p + "t",)))
        ks += _branch_kernels(p, x, scales)
        ks += [Kernel(f"{p}up{s}", ((f"{p}h{s}", 1 / s**2),), ((f"{p}r{s}", 1),), (f"{p}h{s}",)) for s in scales]
        parts = ((p + "b", 1),) + tuple((f"{p}r{s}", 1) for s in scales)
        ks.append(Kernel(p + "fuse", parts, ((p + "f", 1),), tuple(m for m, _ in parts)))
        ks.append(Kernel(p + "mean", ((p + "f", 1),), (), grad=False))
        ks.append(Kernel(p + "attend", ((x, 1), (p + "f", 1)), ((p + "out", 1),), (p + "f",)))
        x = p + "out"
        outs.append((x, 1))
    ks.append(Kernel("fusion_1x1", tuple(outs), (("g1", 1),), tuple(m for m, _ in outs)))
    return ks + _network_tail("g1", img)


def _network_tail(g1: str, img: float) -> list:
    return [Kernel("fusion_3x3", ((g1, 1), ("f0", 1)), (("g", 1),), (g1,)),
            Kernel("tail", (("g", 1), ("img", img)), (("y", img),), ("g",))]


def _composed(blocks: int, scales, img: float) -> list:
    """The CPU plan's passes (mdrn_fast/cpu_plan.py): body2 composed with its share of the fusion 1x1 and added
    into the sum of the reconstructions (each composed with its share of the fusion 1x1: one low-resolution 1x1,
    shuffled and summed in one pass that writes one map); the attention mean and the scale-add passes of their
    own; the network fusion 1x1 accumulated block by block into one running map."""
    ks = [Kernel("head", (("img", img),), (("f0", 1),), ("img",))]
    x = "f0"
    for i in range(blocks):
        p = f"b{i}."
        ks.append(Kernel(p + "body1", ((x, 1),), ((p + "t", 1),), (x, p + "t")))
        ks += _branch_kernels(p, x, scales)
        hs = tuple((f"{p}h{s}", 1 / s**2) for s in scales)
        ks.append(Kernel(p + "reconstruct_sum", hs, ((p + "r", 1),), tuple(m for m, _ in hs)))
        ks.append(Kernel(p + "body2+r", ((p + "t", 1), (p + "r", 1)), ((p + "f", 1),), (p + "t",)))
        ks.append(Kernel(p + "mean", ((p + "f", 1),), (), grad=False))
        ks.append(Kernel(p + "attend", ((x, 1), (p + "f", 1)), ((p + "out", 1),), (p + "f",)))
        x = p + "out"
        acc = ((x, 1),) if i == 0 else ((x, 1), ("u", 1))
        ks.append(Kernel(p + "accumulate", acc, (("u", 1),), (x,)))
    return ks + _network_tail("u", img)


def _triton_plan(blocks: int, scales, img: float) -> list:
    """The triton backend's GPU plan as built (mdrn_fast/gpu_plan.py): body1 a kernel, the degrades of scales 2 and
    4 one kernel reading x once (other scales: a kernel each), each low-resolution 3x3 a kernel; the block tail one kernel (body2 and the reconstructs composed with their shares of the
    fusion 1x1, reading t and the low-resolution h, writing f with the attention sums in its epilogue: no mean
    pass); the scale-add writing the block output, kept for one network fusion 1x1 at the end."""
    ks = [Kernel("head", (("img", img),), (("f0", 1),), ("img",))]
    x, outs = "f0", []
    for i in range(blocks):
        p = f"b{i}."
        ks.append(Kernel(p + "body1", ((x, 1),), ((p + "t", 1),), (x, p + "t")))
        if tuple(scales) == (2, 4):  # both degrades in one kernel, from one read of x
            ds = tuple((f"{p}d{s}", 1 / s**2) for s in scales)
            ks.append(Kernel(p + "degrade2+4", ((x, 1),), ds, (x,) + tuple(m for m, _ in ds)))
            ks += [Kernel(f"{p}mid{s}", ((f"{p}d{s}", 1 / s**2),), ((f"{p}h{s}", 1 / s**2),),
                          (f"{p}d{s}", f"{p}h{s}")) for s in scales]
        else:
            ks += _branch_kernels(p, x, scales)
        reads = ((p + "t", 1),) + tuple((f"{p}h{s}", 1 / s**2) for s in scales)
        ks.append(Kernel(p + "tail", reads, ((p + "f", 1),), tuple(m for m, _ in reads)))
        ks.append(Kernel(p + "attend", ((x, 1), (p + "f", 1)), ((p + "out", 1),), (p + "f",)))
        x = p + "out"
        outs.append((x, 1))
    ks.append(Kernel("fusion_1x1", tuple(outs), (("g1", 1),), tuple(m for m, _ in outs)))
    return ks + _network_tail("g1", img)


def _per_block(blocks: int, scales, img: float, two: bool) -> list:
    """Whole blocks on chip (halo tiles). A block's kernel(s) read the previous block's input x and its f and
    apply that block's attention on the fly (x + f * a: the mean is known once the previous kernel ended),
    writing the block output once (kept for the network fusion). With two kernels per block the first writes
    body1's t and the low-resolution h of each scale (degrade and mid on chip), the second reads them and writes
    f (body2, reconstructs and fusion 1x1, with the attention sums); with one kernel, only f is written."""
    ks = [Kernel("head", (("img", img),), (("f0", 1),), ("img",))]
    x_in, f_prev, outs = "f0", None, []
    for i in range(blocks):
        p = f"b{i}."
        reads = ((x_in, 1),) if f_prev is None else ((x_in, 1), (f_prev, 1))
        x = x_in if f_prev is None else p + "x"
        made = () if f_prev is None else ((x, 1),)
        if f_prev is not None:
            outs.append((x, 1))
        if two:
            hs = tuple((f"{p}h{s}", 1 / s**2) for s in scales)
            ks.append(Kernel(p + "A", reads, made + ((p + "t", 1),) + hs, tuple(m for m, _ in reads)))
            ks.append(Kernel(p + "B", ((p + "t", 1),) + hs, ((p + "f", 1),), (p + "t",) + tuple(m for m, _ in hs)))
        else:
            ks.append(Kernel(p + "block", reads, made + ((p + "f", 1),), tuple(m for m, _ in reads)))
        x_in, f_prev = x, p + "f"
    # the last block's output is formed inside the network fusion, which reads the other block outputs kept
    kept = dict.fromkeys([m for m, _ in outs] + [x_in, f_prev])
    ks.append(Kernel("fusion_1x1", tuple((m, 1) for m in kept), (("g1", 1),), tuple(kept)))
    return ks + _network_tail("g1", img)


DESIGNS = {
    "layer": ("one kernel per layer, epilogues fused", _layer),
    "composed": ("composed as the CPU plan", _composed),
    "triton-plan": ("the triton backend's GPU plan, as built", _triton_plan),
    "two-per-block": ("two kernels per block", lambda b, s, i: _per_block(b, s, i, two=True)),
    "one-per-block": ("one kernel per block (halo tiles on chip)", lambda b, s, i: _per_block(b, s, i, two=False)),
}


def kernels(design: str, blocks: int, scales, in_channels: int, channels: int) -> list:
    return DESIGNS[design][1](blocks, tuple(scales), in_channels / channels)


def maps_moved(ks: list, train: bool = False) -> float:
    """Maps read and written by the forward kernels; with ``train`` also by the backward: each kernel reads its
    outputs' gradients and its saved maps and writes its inputs' gradients (none for the image); a map read by
    k kernels gets k gradient contributions, the first written, each further one read, added and written."""
    fwd = sum(size for k in ks for _, size in k.reads + k.writes)
    if not train:
        return fwd
    size = {m: s for k in ks for m, s in k.reads + k.writes}
    consumers: dict = {}
    for k in ks:
        for m, _ in k.reads if k.grad else ():
            consumers[m] = consumers.get(m, 0) + 1
    bwd = sum(s for k in ks for _, s in k.writes) + sum(size[m] for k in ks for m in k.saved)
    bwd += sum(size[m] * (2 * c - 1) for m, c in consumers.items() if m != "img")
    return fwd + bwd


def design_floors(config: dict, shape, bytes_per_element: int, train: bool = False) -> dict:
    """{design: (maps moved, bytes moved)} for an MDRN of ``config`` (channels, blocks, scales, in_channels) on
    an input of ``shape`` [N, in_channels, H, W]."""
    n, _, h, w = shape
    c = config["channels"]
    map_bytes = n * c * h * w * bytes_per_element
    out = {}
    for name in DESIGNS:
        maps = maps_moved(kernels(name, config["blocks"], config["scales"], config["in_channels"], c), train)
        out[name] = (maps, maps * map_bytes)
    return out
