"""mdrn-fast demo: noisy | denoised | clean strip of one test image, with PSNRs."""
from __future__ import annotations


HELP = "denoise a test image and write a noisy | denoised | clean PNG strip (prints PSNRs)"


def add_arguments(parser) -> None:
    from mdrn_fast import flags

    parser.add_argument("--image", type=flags.existing_file,
                        help="an image file (default: Set12's first image, or a synthetic one)")
    parser.add_argument("--sigma", type=flags.sigma, default=25.0, help="the noise level added, on the 0-255 scale")
    parser.add_argument("--model", default="mdrn-base", type=flags.shipped_model, help="which shipped weights")
    parser.add_argument("--weights", type=flags.existing_file, help="a weight file instead of the shipped ones")
    parser.add_argument("--backend", default="auto", type=flags.backend, help=flags.BACKEND_HELP)
    parser.add_argument("-o", "--out", default="demo.png", help="the PNG strip to write")
    parser.add_argument("--overwrite", action="store_true", help="allow replacing an existing file")


def _test_image(path):
    import numpy as np

    from mdrn_fast.images import load_image
    from mdrn_fast.paths import dataset

    if path:
        return load_image(path, channels=1).pixels, path
    try:
        first = dataset("Set12")[0]
        return load_image(first, channels=1).pixels, str(first)
    except FileNotFoundError:
        yy, xx = np.mgrid[0:256, 0:256] / 255.0  # synthetic: smooth shading, a disc and stripes
        img = 0.3 + 0.4 * xx + 0.2 * ((yy - 0.5) ** 2 + (xx - 0.5) ** 2 < 0.08) + 0.1 * (np.sin(40 * yy) > 0)
        return np.clip(img, 0, 1).astype(np.float32)[..., None], "synthetic"


def run(args) -> int:
    import numpy as np
    import torch
    from PIL import Image, ImageDraw

    from mdrn_fast.evaluate import noisy_version
    from mdrn_fast.images import quantize
    from mdrn_fast.inference import denoise_tensor
    from mdrn_fast.metrics import psnr
    from mdrn_fast.model_choice import load_chosen
    from mdrn_fast.weights_file import load_weights

    from pathlib import Path

    from mdrn_fast.atomic import write_atomically
    from mdrn_fast.errors import UsageError, check_backend_on

    check_backend_on(args.backend, torch.device("cpu"))
    target = Path(args.out)
    if target.is_dir():
        raise UsageError(f"-o {target}: a folder; -o names the PNG file to write")
    if target.exists() and not args.overwrite:
        raise UsageError(f"-o {target} exists (pass --overwrite to replace it)")
    try:
        model = (load_weights(args.weights, backend=args.backend)[0] if args.weights
                 else load_chosen(args.model, args.sigma, False, args.backend))
    except FileNotFoundError as e:
        raise UsageError(f"{e}. Pass --weights FILE (e.g. from `mdrn-fast train`)") from None
    if model.in_channels != 1:
        raise UsageError(f"--weights {args.weights}: a color model; the demo shows a gray image (pass a gray model, "
                         "or score color ones with `mdrn-fast eval --set CBSD68`)")
    clean, name = _test_image(args.image)
    x = torch.from_numpy(clean.transpose(2, 0, 1).copy())[None]
    y = noisy_version(x, args.sigma, seed=0)
    out = denoise_tensor(y, model.eval())
    images = [quantize(t[0].numpy().transpose(1, 2, 0))[..., 0] for t in (y, out.float())] + [quantize(clean)[..., 0]]
    p_noisy, p_out = psnr(images[0], images[2]), psnr(images[1], images[2])
    h, w = images[0].shape
    strip = Image.new("L", (3 * w + 20, h + 24), 255)
    draw = ImageDraw.Draw(strip)
    for i, (im, label) in enumerate(zip(images, [f"noisy {p_noisy:.2f} dB", f"denoised {p_out:.2f} dB", "clean"])):
        strip.paste(Image.fromarray(im), (i * (w + 10), 24))
        draw.text((i * (w + 10) + 4, 6), label, fill=0)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_atomically(target, lambda tmp: strip.save(tmp, format="PNG"), overwrite=args.overwrite)
    except FileExistsError:
        raise UsageError(f"-o {target} was written by another process meanwhile; kept it") from None
    print(f"{name}, sigma {args.sigma:g}: noisy {p_noisy:.2f} dB -> denoised {p_out:.2f} dB; wrote {args.out}")
    return 0
