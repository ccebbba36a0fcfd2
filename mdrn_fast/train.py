"""The training loop: Adam, cosine or multistep schedule, L1 (or an HMDS objective), AMP on GPU, patches drawn on
the GPU, periodic validation PSNR, atomic checkpoints, exact resume, DistributedDataParallel under torchrun,
safetensors export."""
from __future__ import annotations

import json
import math
import os
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from . import ops
from .checkpoint import load_checkpoint, save_checkpoint
from .data import PatchDataset, StepSampler, batch_sigmas, parse_sigma
from .device_patches import DevicePatches
from .errors import UsageError, check_backend_on, resolve_device
from .evaluate import evaluate, summary
from .models import mdrn
from .paths import dataset
from .weights_file import load_into, save_weights


@dataclass
class TrainConfig:
    preset: str = "mdrn-base"
    color: bool = False
    sigma: str = "25"  # a number, or a blind range "0-55"
    train_set: str = "Train400"
    val_set: str = "Set12"
    val_images: int = 4  # first N images of val_set (0: no validation)
    data: str | None = None  # data folder; default $MDRN_FAST_DATA, else ~/.cache/mdrn_fast/data
    patch: int = 64
    batch: int = 16
    steps: int = 1000
    lr: float = 1e-3
    schedule: str = "cosine"  # or "multistep" (x0.5 at 50%, 75%, 90% of the steps)
    seed: int = 0
    backend: str = "auto"
    device: str = "auto"
    amp: str = "bf16"  # bf16 | fp16 | off; CUDA only
    workers: int = 2  # loader "workers" only
    loader: str = "auto"  # "device": patches drawn on the training device; "workers": DataLoader; auto: device on GPU
    channels_last: bool = False  # NHWC activations (faster convolutions on tensor-core GPUs)
    init: str | None = None  # a weight file to start from (fine-tuning), e.g. the sigma-25 model for sigma 15
    out: str = "runs/mdrn"
    val_every: int = 500
    ckpt_every: int = 200
    log_every: int = 10
    overrides: dict = field(default_factory=dict)  # extra MDRN arguments, e.g. {"channels": 8, "blocks": 2}


class Reconstruction(nn.Module):
    """The plain objective: L1(model(noisy), clean)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.student = model

    def forward(self, clean, noisy, sigma):
        loss = F.l1_loss(self.student(noisy), clean)
        return loss, {"l1": loss.detach()}  # tensors: reading them would wait for the GPU every step


def _distributed(device: torch.device) -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():  # NCCL for GPU training, gloo for CPU (even where a GPU exists)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def _scheduler(opt, cfg: TrainConfig):
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5 * (1 + math.cos(math.pi * min(t, cfg.steps) / cfg.steps)))
    if cfg.schedule == "multistep":
        marks = [int(cfg.steps * f) for f in (0.5, 0.75, 0.9)]
        return torch.optim.lr_scheduler.MultiStepLR(opt, marks, gamma=0.5)
    raise ValueError(f"schedule: expected cosine or multistep, got {cfg.schedule!r}")


def build_model(cfg: TrainConfig):
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank and every run
    model = mdrn(cfg.preset, in_channels=3 if cfg.color else 1, backend=cfg.backend, **cfg.overrides)
    if cfg.init:
        try:
            load_into(model, cfg.init)
        except (FileNotFoundError, ValueError) as e:
            raise UsageError(f"--init: {e}") from None
    return model


def _loader_kind(cfg: TrainConfig, device: torch.device) -> str:
    if cfg.loader not in ("auto", "device", "workers"):
        raise UsageError(f"--loader: expected auto, device or workers, got {cfg.loader!r}")
    return ("device" if device.type == "cuda" else "workers") if cfg.loader == "auto" else cfg.loader


def _batches(cfg: TrainConfig, device, start: int, stop: int, rank: int, world: int):
    """The clean patches of steps [start, stop) of this rank, on ``device``."""
    channels = 3 if cfg.color else 1
    if _loader_kind(cfg, device) == "device":
        patches = DevicePatches(cfg.train_set, channels, cfg.patch, cfg.seed, cfg.data, device)
        for step in range(start, stop):
            yield patches.batch(step, cfg.batch, rank)
        return
    data = PatchDataset(cfg.train_set, channels, cfg.patch, cfg.seed, cfg.data)
    loader = DataLoader(data, batch_size=cfg.batch, sampler=StepSampler(start, stop, cfg.batch, rank, world),
                        num_workers=cfg.workers, persistent_workers=False, pin_memory=device.type == "cuda")
    for clean in loader:
        yield clean.to(device, non_blocking=True)


RUN_FILES = ("checkpoint.pt", "model.safetensors")


def check_run_folder(cfg: TrainConfig, resume: str | None, overwrite: bool) -> None:
    """A new run never replaces another's checkpoint or weights unless asked to (--overwrite)."""
    out = Path(cfg.out)
    found = [name for name in RUN_FILES if (out / name).exists()]
    if found and not resume and not overwrite:
        raise UsageError(f"{out} already holds a run ({', '.join(found)}): continue it with --resume "
                         f"{out / 'checkpoint.pt'}, start over with --overwrite, or pick another --out")


def resolve_data(cfg: TrainConfig) -> list:
    """Every image set the run will read, checked before the first step (a missing validation set must not
    end a long run at its last step); returns the validation files."""
    try:
        parse_sigma(cfg.sigma)
    except ValueError as e:
        raise UsageError(str(e)) from None
    dataset(cfg.train_set, cfg.data)
    return dataset(cfg.val_set, cfg.data)[:cfg.val_images] if cfg.val_images else []


def run(cfg: TrainConfig, objective: nn.Module | None = None, resume: str | None = None,
        stop_after: int | None = None, overwrite: bool = False) -> dict:
    """Train; returns {"step", "losses" (per step, this process), "val_psnr", "weights" (path), "model"}.
    ``stop_after`` ends the run early at that step (after checkpointing), as an interruption would. The final
    checkpoint and weights are written before the final validation, so that nothing is lost if it fails."""
    device = resolve_device(cfg.device)
    check_backend_on(cfg.backend, device)
    check_run_folder(cfg, resume, overwrite)
    _loader_kind(cfg, device)
    val_files = resolve_data(cfg)
    rank, world = _distributed(device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    objective = (objective or Reconstruction(build_model(cfg))).to(device, memory_format=memory_format)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # one patch size: let cuDNN pick its fastest convolutions once
    model = objective.student
    params = [p for p in objective.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    sched = _scheduler(opt, cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    start, losses = 0, []
    if resume:
        state = load_checkpoint(resume, map_location=device)
        try:
            objective.load_state_dict(state["objective"])
        except (KeyError, RuntimeError) as e:
            raise UsageError(f"--resume {resume}: the checkpoint does not match this run's model and objective "
                             f"({str(e).splitlines()[0][:200]})") from None
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start = int(state["step"])
    if start >= cfg.steps:  # nothing left to do: leave the run's files as they are
        if rank == 0:
            print(f"{out}: the run is complete at step {start} of {cfg.steps}; nothing to do "
                  "(raise --steps to train further)")
        weights = out / "model.safetensors"
        return {"step": start, "losses": [], "val_psnr": None, "weights": str(weights) if weights.exists() else None,
                "model": model}
    wrapped = nn.parallel.DistributedDataParallel(objective) if world > 1 else objective
    stop = min(cfg.steps, stop_after if stop_after is not None else cfg.steps)
    amp = device.type == "cuda" and cfg.amp != "off"
    amp_dtype = torch.bfloat16 if cfg.amp == "bf16" else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=amp and cfg.amp == "fp16")
    val_psnr = None
    bar = tqdm(total=stop - start, initial=0, desc="train", disable=rank != 0, unit="step")
    pending = []  # this interval's losses, still on the device: read once per log line, not once per step
    tick = time.perf_counter()
    for step, clean in enumerate(_batches(cfg, device, start, stop, rank, world), start=start):
        objective.train()
        clean = clean.contiguous(memory_format=memory_format)
        sigma = batch_sigmas(cfg.sigma, clean.shape[0], cfg.seed, step, rank).to(device)
        noise_seed = zlib.crc32(f"{cfg.seed}:{step}:{rank}".encode())
        noisy = ops.add_noise(clean, sigma, seed=noise_seed, backend="torch")
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
            loss, stats = wrapped(clean, noisy, sigma)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        sched.step()
        pending.append(loss.detach())
        done = step + 1
        if done % cfg.log_every == 0 or done == stop:
            losses += torch.stack(pending).float().tolist()
            if rank == 0:
                seconds = max(1e-9, time.perf_counter() - tick)
                pixels = len(pending) * cfg.batch * world * cfg.patch ** 2
                bar.set_postfix(loss=f"{losses[-1]:.4f}", Mpx_s=f"{pixels / seconds / 1e6:.1f}",
                                lr=f"{sched.get_last_lr()[0]:.2e}")
            pending, tick = [], time.perf_counter()
        bar.update(1)
        if rank == 0 and (done % cfg.ckpt_every == 0 or done == stop):
            save_checkpoint(out / "checkpoint.pt", {
                "objective": objective.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "step": done, "config": json.dumps(asdict(cfg)), "rng_cpu": torch.get_rng_state()})
        if rank == 0 and val_files and done % cfg.val_every == 0 and done != cfg.steps:
            val_psnr = validate(model, cfg, val_files, device)
            bar.write(f"step {done}: validation PSNR {val_psnr:.2f} dB on {len(val_files)} images of {cfg.val_set}")
    bar.close()
    result = {"step": stop, "losses": losses, "val_psnr": val_psnr, "weights": None, "model": model}
    if rank == 0 and stop == cfg.steps:
        meta = dict(preset=cfg.preset, sigma=cfg.sigma, channels=model.channels,
                    train=asdict(cfg) | {"world_size": world})
        weights = save_weights(out / "model.safetensors", model, **meta)  # first: kept if validation fails
        if val_files:
            result["val_psnr"] = val_psnr = validate(model, cfg, val_files, device)
            print(f"step {stop}: validation PSNR {val_psnr:.2f} dB on {len(val_files)} images of {cfg.val_set}")
            save_weights(weights, model, **meta, val_psnr=round(val_psnr, 3),
                         val_set=f"{cfg.val_set}[:{len(val_files)}]")
        result["weights"] = str(weights)
    if world > 1:
        dist.barrier()
    return result


def validate(model, cfg: TrainConfig, files, device) -> float:
    lo, hi = parse_sigma(cfg.sigma)
    rows = evaluate(model, files, (lo + hi) / 2 if hi > lo else lo, device=str(device), progress=False)
    return summary(rows)["psnr"]
