"""The evaluation protocol of docs/DESIGN.md section 6 (as KAIR/DnCNN): AWGN added in float with a fixed seed per
image, the noisy input neither clipped nor quantized; the output clipped and rounded to uint8; PSNR and SSIM
on uint8 images with no border crop."""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from . import reference
from .images import load_image, quantize, save_image
from .inference import denoise_tensor
from .metrics import SSIM_WINDOW, psnr, ssim


@dataclass
class Row:
    name: str
    psnr_noisy: float
    psnr: float
    ssim: float


def image_seed(name: str, sigma: float, base_seed: int = 0) -> int:
    """The fixed noise seed of one test image: CRC32 of its file name, the sigma and a base seed."""
    return zlib.crc32(f"{name}:{sigma:g}:{base_seed}".encode())


def noisy_version(clean: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    """clean + sigma/255 * N(0, 1), float32, drawn on the CPU so that every device sees the same noise."""
    return reference.add_noise(clean.float().cpu(), sigma, seed=seed)


@torch.no_grad()
def evaluate(model, files, sigma: float, device: str = "cpu", save_to: dict | None = None, base_seed: int = 0,
             progress: bool = True, tiling: dict | None = None, overwrite: bool = False) -> list[Row]:
    """Per-image PSNR/SSIM of ``model`` on ``files`` at ``sigma`` (images read as the model's channel count);
    ``save_to``: {file: the PNG its denoised output goes to}, written atomically and, unless ``overwrite``, never
    over an existing file (FileExistsError); ``tiling``: keyword arguments of denoise_tensor (tile, overlap,
    memory, mode)."""
    model.eval()
    dtype = next(model.parameters()).dtype
    rows = []
    for path in tqdm(list(files), desc=f"eval sigma={sigma:g}", disable=not progress, unit="img"):
        path = Path(path)
        clean = load_image(path, channels=model.in_channels).pixels
        x = torch.from_numpy(clean.transpose(2, 0, 1).copy())[None]
        y = noisy_version(x, sigma, image_seed(path.name, sigma, base_seed))
        out = denoise_tensor(y.to(device, dtype), model, **(tiling or {})).float().cpu()
        clean8 = quantize(clean)
        out8 = quantize(out[0].numpy().transpose(1, 2, 0))
        noisy8 = quantize(y[0].numpy().transpose(1, 2, 0))
        small = min(clean8.shape[:2]) < SSIM_WINDOW  # no SSIM for it (see summary); PSNR always
        rows.append(Row(path.name, psnr(noisy8, clean8), psnr(out8, clean8),
                        math.nan if small else ssim(out8, clean8)))
        if save_to is not None:
            save_image(save_to[path], out8, overwrite=overwrite)
    return rows


def summary(rows: list[Row]) -> dict:
    """Means over the rows; SSIM over the images large enough for its window ("ssim_images" of them)."""
    scored = [r.ssim for r in rows if not math.isnan(r.ssim)]
    return {"images": len(rows), "psnr_noisy": float(np.mean([r.psnr_noisy for r in rows])),
            "psnr": float(np.mean([r.psnr for r in rows])),
            "ssim": float(np.mean(scored)) if scored else math.nan, "ssim_images": len(scored)}


def table(rows: list[Row], title: str = "") -> str:
    """A markdown table: one row per image, then the mean."""
    lines = ([f"### {title}", ""] if title else []) + ["| image | PSNR noisy | PSNR | SSIM |", "|---|---|---|---|"]
    lines += [f"| {r.name} | {r.psnr_noisy:.2f} | {r.psnr:.2f} | {_ssim_text(r.ssim)} |" for r in rows]
    s = summary(rows)
    lines.append(f"| **mean ({s['images']})** | {s['psnr_noisy']:.2f} | **{s['psnr']:.2f}** | "
                 f"**{_ssim_text(s['ssim'])}** |")
    if s["ssim_images"] < s["images"]:
        lines.append(f"\nSSIM: {s['images'] - s['ssim_images']} image(s) under {SSIM_WINDOW}x{SSIM_WINDOW} pixels "
                     f"(SSIM's window) not scored; the SSIM mean is over the other {s['ssim_images']}")
    return "\n".join(lines)


def _ssim_text(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.4f}"
