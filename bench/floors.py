"""The hardware limit a workload is measured against: floor time = max(FLOPs / peak FLOP/s, bytes / peak B/s).

GPU peaks are the vendors' dense (no sparsity) datasheet figures; for a CPU, or a GPU not in the table, the
peaks are measured here (a large matmul and a large copy), which makes the floor optimistic-but-real.
"""
from __future__ import annotations

import time

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


def device_peaks(device: torch.device) -> dict:
    """{"name", "flops_bf16", "flops_tf32", "flops_fp32", "bytes_per_s", "source"} for the device."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, (bf16, tf32, fp32, tbs) in GPU_PEAKS.items():
            if key in name:
                return dict(name=name, flops_bf16=bf16 * 1e12, flops_tf32=tf32 * 1e12, flops_fp32=fp32 * 1e12,
                            bytes_per_s=tbs * 1e12, source=f"datasheet ({key})")
    else:
        import platform

        name = f"CPU {platform.processor() or platform.machine()} x{torch.get_num_threads()} threads"
    flops, bw = _measure(device)
    return dict(name=name, flops_bf16=flops, flops_tf32=flops, flops_fp32=flops, bytes_per_s=bw,
                source="measured (matmul, copy)")


def floor_seconds(flops: float, bytes_moved: float, peaks: dict, low_precision: bool) -> float:
    """bf16 work against the bf16 peak; fp32 work against the TF32 peak where TF32 is allowed (the bench sets
    one switch for all providers), else the plain fp32 peak."""
    if low_precision:
        peak = peaks["flops_bf16"]
    else:
        peak = peaks["flops_tf32"] if torch.backends.cudnn.allow_tf32 else peaks["flops_fp32"]
    return max(flops / peak, bytes_moved / peaks["bytes_per_s"])
