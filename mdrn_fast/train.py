"""The training loop: Adam, cosine or multistep schedule, L1 (or an HMDS objective), AMP on GPU, patches drawn on
the GPU, the step replayed from one CUDA graph, periodic validation PSNR, atomic checkpoints, exact resume,
DistributedDataParallel under torchrun, safetensors export."""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import threading
import time
import zlib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from . import flags, ops
from .checkpoint import load_training_checkpoint, save_checkpoint
from .cuda_graph import GraphedStep
from .data import PatchDataset, StepSampler, batch_sigmas, parse_sigma
from .device_patches import DevicePatches
from .errors import UsageError, check_backend_on, resolve_device
from .evaluate import evaluate, summary
from .images import ImageError, load_image
from .models import mdrn
from .models.mdrn import PRESETS, SHAPE_KEYS, check_config
from .paths import dataset
from .weights_file import load_into, save_weights


@dataclass
class TrainConfig:
    """A training run's settings; what each one means: HELP (the flags' help)."""

    preset: str = "mdrn-base"
    color: bool = False
    sigma: str = "25"
    train_set: str = "Train400"
    val_set: str = "Set12"
    val_images: int = 4
    data: str | None = None
    patch: int = 64
    batch: int = 16
    steps: int = 1000
    lr: float = 1e-3
    schedule: str = "cosine"
    seed: int = 0
    backend: str = "auto"
    device: str = "auto"
    amp: str = "bf16"
    workers: int = 2
    loader: str = "auto"
    channels_last: bool = False
    recompute: str = "auto"
    graph: str = "auto"
    init: str | None = None
    out: str = "runs/mdrn"
    val_every: int = 500
    ckpt_every: int = 200
    log_every: int = 10
    overrides: dict = field(default_factory=dict)


# What each setting means, as `mdrn-fast train --help` shows it (with its default).
HELP = dict(
    preset=f"the network: {', '.join(sorted(PRESETS))}",
    color="train on RGB (3 channels) rather than gray",
    sigma="the AWGN level on the 0-255 scale, or a blind range such as 0-55 (a level per patch)",
    train_set="a standard set (Train400, BSD432, BSDS200) in the data folder, or a folder of images",
    val_set="the validation set: a standard set or a folder",
    val_images="validate on the first N images of --val-set (0: no validation)",
    data="the data folder, if not $MDRN_FAST_DATA (else ~/.cache/mdrn_fast/data)",
    patch="training patch size, pixels",
    batch="patches per step (per process under torchrun)",
    steps="training steps in all",
    lr="Adam's initial learning rate",
    schedule="cosine (down to 0) or multistep (x0.5 at 50%%, 75%% and 90%% of the steps)",
    seed="seeds the initial weights, the patches and the noise",
    backend=flags.BACKEND_HELP,
    device="auto, cpu, cuda or cuda:N",
    amp="autocast dtype on CUDA (bf16, fp16) or off",
    workers="loader processes (--loader workers only)",
    loader="device: patches drawn on the training device; workers: a DataLoader; auto: device on a GPU",
    channels_last="NHWC activations (faster convolutions on tensor-core GPUs)",
    recompute="on, off or auto (on on a GPU): keep each block's input and output for the backward and recompute "
              "the rest there",
    graph="on, off or auto (on on one GPU, not with --amp fp16): replay the whole step (forward, loss, backward, "
          "Adam) from one CUDA graph",
    init="a weight file to start from (fine-tuning, e.g. the sigma-25 model for sigma 15)",
    out="the run's folder (checkpoint.pt, model.safetensors)",
    val_every="validate every N steps",
    ckpt_every="write the checkpoint every N steps",
    log_every="show the loss and speed every N steps",
    overrides='extra MDRN arguments as JSON, e.g. \'{"channels": 8, "blocks": 2}\'',
)


def _training_sigma(text):
    """A level or a blind range "lo-hi", each from 0 to flags.SIGMA_MAX."""
    try:
        fits = parse_sigma(text)[1] <= flags.SIGMA_MAX
    except ValueError:
        fits = False
    if not fits:
        raise argparse.ArgumentTypeError(f"expected a noise level or a range like 0-55, each from 0 to "
                                         f"{flags.SIGMA_MAX:g}, got {text!r}")
    return str(text)


# What each setting allows, as flag types: the flags are parsed with them and --config / resumed values are
# checked with them (check_settings), so that a bad value stops the run before it reads or writes anything.
SETTINGS = dict(
    preset=flags.preset, sigma=_training_sigma, val_images=flags.count, patch=flags.integer(8, 1024),
    batch=flags.positive, steps=flags.positive, lr=flags.number(0, low_open=True),
    schedule=flags.choice("cosine", "multistep"), seed=flags.count, backend=flags.backend, device=flags.device,
    amp=flags.choice("bf16", "fp16", "off"), recompute=flags.choice("auto", "on", "off"), workers=flags.count,
    loader=flags.choice("auto", "device", "workers"), graph=flags.choice("auto", "on", "off"),
    val_every=flags.positive, ckpt_every=flags.positive, log_every=flags.positive,
)


def check_settings(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with each setting checked (and converted) by its flag type; a UsageError names the first bad one."""
    for name, parse in SETTINGS.items():
        value = getattr(cfg, name)
        if value is None:
            continue
        try:
            setattr(cfg, name, parse(str(value)))
        except argparse.ArgumentTypeError as e:
            raise UsageError(f"--{name.replace('_', '-')} {value}: {e}") from None
    for f in fields(cfg):  # switches (--color, --channels-last): JSON true or false, not "false" (which is truthy)
        if f.type == "bool" and not isinstance(getattr(cfg, f.name), bool):
            raise UsageError(f"--{f.name.replace('_', '-')} {json.dumps(getattr(cfg, f.name))}: expected true or false")
    if not isinstance(cfg.overrides, dict):
        raise UsageError(f"--overrides {cfg.overrides!r}: expected a JSON object such as {{\"channels\": 8}}")
    return cfg


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


def lr_factor(cfg: TrainConfig, step: int) -> float:
    """The schedule: cosine from 1 to 0 over the steps, or multistep (x0.5 at 50%, 75% and 90% of them)."""
    if cfg.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(step, cfg.steps) / cfg.steps))
    return 0.5 ** sum(step >= int(cfg.steps * f) for f in (0.5, 0.75, 0.9))


def _scheduler(opt, cfg: TrainConfig):
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(cfg, step))


def _set_lr(opt, sched, cfg: TrainConfig) -> None:
    """A resumed run's schedule with this run's --lr (the checkpoint holds the learning rate it started with)."""
    sched.base_lrs = [cfg.lr] * len(opt.param_groups)
    for group in opt.param_groups:
        group["initial_lr"], group["lr"] = cfg.lr, cfg.lr * lr_factor(cfg, sched.last_epoch)


def build_model(cfg: TrainConfig, load_init: bool = True):
    """The run's network, seeded; ``--init`` weights loaded unless ``load_init`` is False (a resumed run's
    checkpoint replaces them anyway)."""
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank and every run
    try:
        # the shape within the limits a weight file is held to (LIMITS): a typo in --overrides must not try to
        # allocate hundreds of gigabytes
        in_channels = 3 if cfg.color else 1
        shape = dict(PRESETS[cfg.preset], in_channels=in_channels) | cfg.overrides
        check_config({k: v for k, v in shape.items() if k in SHAPE_KEYS})
        model = mdrn(cfg.preset, in_channels=in_channels, backend=cfg.backend, **cfg.overrides)
    except (TypeError, ValueError) as e:  # an unknown --overrides key, or a value out of range
        raise UsageError(f"--overrides {json.dumps(cfg.overrides)}: {e}") from None
    model.recompute = {"auto": "auto", "on": True, "off": False}[cfg.recompute]
    if cfg.init and load_init:
        try:
            load_into(model, cfg.init)
        except (FileNotFoundError, ValueError) as e:
            raise UsageError(f"--init: {e}") from None
    return model


def graph_wanted(cfg: TrainConfig, device: torch.device, world: int) -> bool:
    """Whether the step (forward, loss, backward, Adam) replays from a CUDA graph: --graph on, or auto on one CUDA
    device. fp16's loss scaler reads the gradients on the host every step, and DDP's buckets would need a graph
    of their own, so neither goes with a graph."""
    why_not = None
    if device.type != "cuda":
        why_not = "CUDA graphs need a CUDA device"
    elif cfg.amp == "fp16":
        why_not = "not with --amp fp16 (its loss scaler reads the gradients on the host every step); use --amp bf16"
    elif world > 1:
        why_not = "one process only (not under torchrun)"
    if cfg.graph == "on" and why_not:
        raise UsageError(f"--graph on: {why_not}")
    return cfg.graph == "on" or (cfg.graph == "auto" and why_not is None)


def _make_capturable(opt) -> None:
    """The fused Adam of a graphed step: its learning rate a device tensor (the scheduler fills it in place, so
    each replay reads the step's rate) and capturable, so that its step count stays on the device."""
    for group in opt.param_groups:
        group["lr"] = torch.tensor(float(group["lr"]), device=group["params"][0].device)
        group["capturable"] = True


def _portable(optimizer_state: dict, scheduler_state: dict) -> tuple[dict, dict]:
    """The optimizer's and scheduler's state as a run without a graph keeps it (learning rates as numbers,
    capturable off), so that a checkpoint resumes with or without a graph, on a GPU or on the CPU."""
    for group in optimizer_state["param_groups"]:
        group["lr"], group["capturable"] = float(group["lr"]), False
    scheduler_state["_last_lr"] = [float(lr) for lr in scheduler_state["_last_lr"]]
    return optimizer_state, scheduler_state


def _loader_kind(cfg: TrainConfig, device: torch.device) -> str:
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
    """A run never replaces another's checkpoint or weights unless asked to (--overwrite): a new one, nor a
    resumed one whose --out is not the folder it resumes from."""
    out = Path(cfg.out)
    found = [name for name in RUN_FILES if (out / name).exists()]
    if not found or overwrite:
        return
    if not resume:
        raise UsageError(f"{out} already holds a run ({', '.join(found)}): continue it with --resume "
                         f"{out / 'checkpoint.pt'}, start over with --overwrite, or pick another --out")
    if Path(resume).parent.resolve() != out.resolve():  # resume: the checkpoint file
        raise UsageError(f"--out {out} already holds another run ({', '.join(found)}); resuming {resume} there "
                         "would replace it: pass --overwrite, or pick another --out")


def resolve_data(cfg: TrainConfig) -> list:
    """Every image set the run will read, checked before the first step (a missing validation set, or one bad
    image in it, must not end a long run at its first validation); returns the validation files."""
    dataset(cfg.train_set, cfg.data)
    val_files = dataset(cfg.val_set, cfg.data)[:cfg.val_images] if cfg.val_images else []
    for f in val_files:  # a few images: read each once now (the training set is read whole before the first step)
        try:
            load_image(f)
        except ImageError as e:
            raise UsageError(f"--val-set {cfg.val_set}: {e}") from None
    return val_files


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM ended the run after a step, with its checkpoint written: ``checkpoint`` continues it."""

    def __init__(self, signal_name: str, step: int, checkpoint: Path):
        super().__init__(f"{signal_name} at step {step}")
        self.signal_name, self.step, self.checkpoint = signal_name, step, checkpoint


class Diverged(RuntimeError):
    """The loss became NaN or infinite; the last finite checkpoint is kept."""


def run(cfg: TrainConfig, objective: nn.Module | None = None, resume: str | None = None,
        stop_after: int | None = None, overwrite: bool = False, objective_settings: dict | None = None) -> dict:
    """Train; returns {"step", "losses" (per step, this process), "val_psnr", "weights" (path), "model"}.
    ``resume``: the checkpoint file to continue from; ``objective_settings``: the objective's settings (JSON
    values), kept in every checkpoint for a resumed run to read back (mdrn-fast distill does).
    ``stop_after`` ends the run early at that step (after checkpointing), as an interruption would. SIGINT and
    SIGTERM end it after the current step, checkpointed (Interrupted); a non-finite loss ends it without
    replacing the last good checkpoint (Diverged). The final weights are written before the final checkpoint
    (which marks the run complete) and before the final validation, so that nothing is lost if either fails."""
    check_settings(cfg)
    device = resolve_device(cfg.device)
    check_backend_on(cfg.backend, device)
    check_run_folder(cfg, resume, overwrite)
    val_files = resolve_data(cfg)
    rank, world = _distributed(device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    graph = graph_wanted(cfg, device, world)
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    objective = (objective or Reconstruction(build_model(cfg, load_init=not resume))).to(
        device, memory_format=memory_format)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # one patch size: let cuDNN pick its fastest convolutions once
    model = objective.student
    params = [p for p in objective.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr, fused=device.type == "cuda")  # one kernel for the whole update
    sched = _scheduler(opt, cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    weights_path = out / "model.safetensors"
    meta = dict(preset=cfg.preset, sigma=cfg.sigma, channels=model.channels, train=asdict(cfg) | {"world_size": world})
    start, losses = 0, []
    if resume:
        state = load_training_checkpoint(resume, map_location=device)
        try:
            objective.load_state_dict(state["objective"])
        except (KeyError, RuntimeError) as e:
            raise UsageError(f"--resume {resume}: the checkpoint does not match this run's model and objective "
                             f"({str(e).splitlines()[0][:200]})") from None
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        _set_lr(opt, sched, cfg)
        start = int(state["step"])
    if graph:
        _make_capturable(opt)
    if start >= cfg.steps:  # nothing left to train; a run killed before its weights file gets it now
        weights = weights_path if weights_path.exists() else None
        if rank == 0 and weights is None:
            weights = save_weights(weights_path, model, **meta)
            print(f"{out}: the run is complete at step {start}; wrote its weights {weights} from the checkpoint")
        elif rank == 0:
            print(f"{out}: the run is complete at step {start} of {cfg.steps}; nothing to do "
                  "(raise --steps to train further)")
        return {"step": start, "losses": [], "val_psnr": None, "weights": str(weights) if weights else None,
                "model": model}
    wrapped = nn.parallel.DistributedDataParallel(objective) if world > 1 else objective
    stop = min(cfg.steps, stop_after if stop_after is not None else cfg.steps)
    amp = device.type == "cuda" and cfg.amp != "off"
    amp_dtype = torch.bfloat16 if cfg.amp == "bf16" else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=amp and cfg.amp == "fp16")
    val_psnr = None
    pending = []  # losses since the last check, still on the device: read once per log line, not once per step
    checked = start  # the steps whose losses are known to be finite

    def train_step(clean, noisy, sigma):
        # autocast's weight cache must be off under capture: the graph would keep the first step's casts
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp, cache_enabled=not graph):
            loss, _ = wrapped(clean, noisy, sigma)
        opt.zero_grad(set_to_none=True)  # under capture: the backward writes fresh gradients (the graph's)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss.detach()

    tick = time.perf_counter()
    with StopRequests(world) as stop_request, tqdm(total=stop - start, desc="train", disable=rank != 0,
                                                   unit="step") as bar:
        if graph:  # the noisy batch is drawn outside the graph and copied into its input buffers
            train_step = GraphedStep(train_step, on_failure=lambda why: bar.write(
                f"note: the CUDA graph of the training step could not be captured ({why}); training goes on "
                "without it (--graph off skips the attempt)"))
        for step, clean in enumerate(_batches(cfg, device, start, stop, rank, world), start=start):
            objective.train()
            clean = clean.contiguous(memory_format=memory_format)
            sigma = batch_sigmas(cfg.sigma, clean.shape[0], cfg.seed, step, rank).to(device)
            noise_seed = zlib.crc32(f"{cfg.seed}:{step}:{rank}".encode())
            noisy = ops.add_noise(clean, sigma, seed=noise_seed, backend="torch")
            loss = train_step(clean, noisy, sigma)
            sched.step()
            pending.append(loss.clone() if graph else loss)  # a graph's loss is overwritten by the next replay
            done = step + 1
            interrupted = stop_request.agreed(collective=done % cfg.log_every == 0 or done == stop)
            saving = rank == 0 and (done % cfg.ckpt_every == 0 or done == stop or interrupted)
            if done % cfg.log_every == 0 or done == stop or saving:
                seconds = max(1e-9, time.perf_counter() - tick)
                new = torch.stack(pending).float().tolist()
                checked = _check_finite(new, checked, out / "checkpoint.pt")
                losses += new
                if rank == 0:
                    pixels = len(pending) * cfg.batch * world * cfg.patch ** 2
                    bar.set_postfix(loss=f"{losses[-1]:.4f}", Mpx_s=f"{pixels / seconds / 1e6:.3g}",
                                    lr=f"{float(sched.get_last_lr()[0]):.2e}")
                pending, tick = [], time.perf_counter()
            bar.update(1)
            if saving:
                if not bool(torch.stack([torch.isfinite(p).all() for p in params]).all()):
                    raise _diverged(done, "the weights are not finite", out / "checkpoint.pt")
                if done == cfg.steps:  # the weights first: the final checkpoint says the run is complete
                    save_weights(weights_path, model, **meta)
                optimizer_state, scheduler_state = _portable(opt.state_dict(), sched.state_dict())
                save_checkpoint(out / "checkpoint.pt", {
                    "objective": objective.state_dict(), "optimizer": optimizer_state,
                    "scheduler": scheduler_state, "step": done, "config": json.dumps(asdict(cfg)),
                    "objective_settings": json.dumps(objective_settings or {}),
                    "rng_cpu": torch.get_rng_state()})
            if interrupted:
                raise Interrupted(stop_request.name, done, out / "checkpoint.pt")
            if rank == 0 and val_files and done % cfg.val_every == 0 and done != cfg.steps:
                val_psnr = validate(model, cfg, val_files, device)
                bar.write(f"step {done}: validation PSNR {val_psnr:.2f} dB on {len(val_files)} images of "
                          f"{cfg.val_set}")
    result = {"step": stop, "losses": losses, "val_psnr": val_psnr, "weights": None, "model": model}
    if rank == 0 and stop == cfg.steps:
        if val_files:
            result["val_psnr"] = val_psnr = validate(model, cfg, val_files, device)
            print(f"step {stop}: validation PSNR {val_psnr:.2f} dB on {len(val_files)} images of {cfg.val_set}")
            save_weights(weights_path, model, **meta, val_psnr=round(val_psnr, 3),
                         val_set=f"{cfg.val_set}[:{len(val_files)}]")
        result["weights"] = str(weights_path)
    if world > 1:
        dist.barrier()
    return result


def _check_finite(new_losses: list[float], checked: int, checkpoint: Path) -> int:
    """Raise Diverged at the first non-finite loss of steps checked+1...; returns the steps now checked."""
    for i, value in enumerate(new_losses):
        if not math.isfinite(value):
            raise _diverged(checked + i + 1, f"the loss is {value}", checkpoint)
    return checked + len(new_losses)


def _diverged(step: int, what: str, checkpoint: Path) -> Diverged:
    kept = f"kept the last good checkpoint, {checkpoint}" if checkpoint.exists() else "no checkpoint had been written"
    return Diverged(f"training diverged at step {step}: {what}; {kept} (lower --lr, or --amp off, then --resume or "
                    "start over)")


class StopRequests:
    """SIGINT and SIGTERM while training: noted, so that the loop ends after the current step and saves its
    checkpoint (a second signal stops at once). Under DDP every rank stops after the same (logged) step."""

    def __init__(self, world: int = 1):
        self.world, self.name, self.previous = world, None, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._note)
        return self

    def _note(self, signum, frame):
        if self.name is not None:
            raise KeyboardInterrupt
        self.name = signal.Signals(signum).name

    def agreed(self, collective: bool) -> bool:
        """Whether to stop after this step. Under DDP the ranks agree (any rank signalled stops all) only where
        ``collective`` (a step every rank reaches together), so that the GPU is not waited on every step."""
        if self.world == 1:
            return self.name is not None
        if not collective:
            return False
        flag = torch.tensor([self.name is not None], dtype=torch.int32,
                            device="cuda" if dist.get_backend() == "nccl" else "cpu")
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        self.name = self.name or ("SIGTERM" if flag.item() else None)
        return self.name is not None

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        return False


def validate(model, cfg: TrainConfig, files, device) -> float:
    lo, hi = parse_sigma(cfg.sigma)
    rows = evaluate(model, files, (lo + hi) / 2 if hi > lo else lo, device=str(device), progress=False)
    return summary(rows)["psnr"]
