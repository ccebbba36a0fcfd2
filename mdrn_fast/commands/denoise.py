"""mdrn-fast denoise: denoise image files or folders; bad files are reported and skipped, exit 1 at the end."""
from __future__ import annotations

import sys
from pathlib import Path

HELP = ("denoise image files or folders into -o OUT (any image type Pillow reads; PNG out, 8/16-bit, gray or "
        "color, alpha kept; the noise level is estimated per image unless --sigma is given)")


def add_arguments(parser) -> None:
    from mdrn_fast import flags

    parser.add_argument("inputs", nargs="+", metavar="IN", help="image files or folders")
    parser.add_argument("-o", "--out", required=True, help="output folder (created if missing)")
    parser.add_argument("--recursive", action="store_true",
                        help="also denoise the images in the folders' subfolders (a name two files share gets "
                             "their folders' names)")
    parser.add_argument("--sigma", default="auto", type=flags.sigma_or_auto,
                        help="noise level on the 0-255 scale, or auto (default): estimated per image (under 3: "
                             "written unchanged); the shipped model is chosen by mdrn_fast.model_choice's rule, "
                             "which the output line names")
    parser.add_argument("--model", default="mdrn-base", type=flags.shipped_model, help="which shipped weights")
    parser.add_argument("--weights", type=flags.existing_file,
                        help="a weight file instead of the shipped ones (--sigma is then ignored)")
    add_tiling_arguments(parser)
    parser.add_argument("--backend", default="auto", type=flags.backend, help=flags.BACKEND_HELP)
    parser.add_argument("--device", default="auto", type=flags.device, help="auto (a GPU if present), cpu or cuda")
    parser.add_argument("--overwrite", action="store_true", help="allow writing over existing files (inputs too)")


def add_tiling_arguments(parser) -> None:
    """--memory, --tile, --overlap, --tiling: how large images are split (shared with eval)."""
    from mdrn_fast import flags

    parser.add_argument("--memory", default="1G", type=parse_bytes,
                        help="memory for the network's activations: larger images go in tiles")
    parser.add_argument("--tile", type=flags.tile,
                        help="tile core size in pixels, a multiple of the degradation grid, 4 (default: from --memory)")
    parser.add_argument("--overlap", type=flags.overlap,
                        help="tile halo in pixels, a multiple of 4 (default: the receptive field, 48)")
    parser.add_argument("--tiling", type=flags.choice("global", "exact", "local"), default="global",
                        help="global: two passes, within 1 uint8 level of the whole-image result; "
                             "exact: equal to it, B + 1 passes; local: one pass, each tile on its own")


def parse_bytes(text: str) -> int:
    """"1G", "512M", "2.5G", "1000000" -> bytes."""
    import argparse
    import math

    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    t = str(text).strip().upper().removesuffix("B").removesuffix("I")
    try:
        value = float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size such as 512M or 2G, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a size such as 512M or 2G, got {text!r}")
    if value < 1 << 20:
        raise argparse.ArgumentTypeError(f"{text}: at least 1M is needed")
    return int(value)


def input_files(inputs, recursive: bool = False) -> tuple[list[Path], list[str]]:
    """(image files of the inputs, each once, problems): a folder contributes its images (and, ``recursive``,
    those of its subfolders; otherwise skipped subfolders are noted); an empty one is a problem."""
    from mdrn_fast.paths import image_files, special_files

    files, problems = [], []
    for item in map(Path, inputs):
        if item.is_dir():
            folders = [item] + (sorted(p for p in item.rglob("*") if p.is_dir() and not p.name.startswith("."))
                                if recursive else [])
            found = [f for folder in folders for f in image_files(folder)]
            files += found
            for p in (p for folder in folders for p in special_files(folder)):
                print(f"note: {p}: not a regular file (a FIFO, socket or device), skipped", file=sys.stderr)
            subfolders = [p for p in item.iterdir() if p.is_dir() and not p.name.startswith(".")]
            if subfolders and not recursive:
                print(f"note: {item}: {len(subfolders)} subfolder(s) skipped (pass --recursive to denoise them too)",
                      file=sys.stderr)
            if not found:
                problems.append(f"{item}: no images in this folder" + (" or its subfolders" if recursive else ""))
        else:
            files.append(item)
    return list(dict.fromkeys(files)), problems


def output_names(files: list[Path]) -> dict[Path, str]:
    """<stem>.png for each input; inputs that would share a name (a.jpg and a.png, or a.png in two folders)
    get their suffix, then their folder, in the name: a_jpg.png, a_png.png, x_a_png.png."""
    def name(p: Path, level: int) -> str:
        parts = [p.stem] + ([p.suffix.lstrip(".").lower()] if level >= 1 and p.suffix else [])
        if level >= 2:
            parts.insert(0, p.parent.name or "root")
        return "_".join(parts) + ".png"

    names = {}
    for p in files:
        level = 0
        while level < 2 and sum(name(q, level) == name(p, level) for q in files) > 1:
            level += 1
        names[p] = name(p, level)
    seen: dict[str, int] = {}
    for p in files:  # still equal (x/a.png and other/x/a.png): number them
        n = seen.get(names[p], 0)
        seen[names[p]] = n + 1
        if n:
            names[p] = names[p][:-4] + f"_{n}.png"
    return names


class ModelChooser:
    """The model for each image: --weights, or mdrn_fast.model_choice's choice for (model, gray/color, sigma),
    where sigma is the given one or the estimate; a note says once per choice what was used and why.
    --weights is loaded at once: a file that does not load stops the command before the first image. With
    --sigma auto, an image whose estimate is under CLEAN_BELOW looks clean and is written unchanged (model None)."""

    CLEAN_BELOW = 3.0

    def __init__(self, args, device):
        from mdrn_fast.errors import UsageError
        from mdrn_fast.weights_file import load_weights

        self.args, self.device, self.models, self.said = args, device, {}, set()
        self.sigma = args.sigma  # None: estimated per image
        if args.weights:
            try:
                self.models["w"] = load_weights(args.weights, backend=args.backend)[0].to(device)
            except ValueError as e:
                raise UsageError(f"--weights: {e}") from None

    def __call__(self, image, path) -> tuple[object, str]:
        from mdrn_fast.images import ImageError
        from mdrn_fast.model_choice import SIGMA_RANGE, choose, say_on_stderr
        from mdrn_fast.noise_level import estimate_sigma

        if self.args.weights:
            m = self.models["w"]
            if m.in_channels != (3 if image.color else 1):
                raise ImageError(f"{path}: the weights are for {'color' if m.in_channels == 3 else 'gray'} images")
            return m, ""
        wanted = self.sigma
        if wanted is None:
            wanted = estimate_sigma(image.pixels, image.jpeg_quality)
            if wanted < self.CLEAN_BELOW:
                return None, (f"noise sigma ~{wanted:.1f}, under {self.CLEAN_BELOW:g}: looks clean, written "
                              "unchanged; pass --sigma N to denoise it anyway")
        choice = choose(self.args.model, min(wanted, SIGMA_RANGE[1]), image.color)
        if choice.note and (choice.shipped.file, choice.split) not in self.said:
            self.said.add((choice.shipped.file, choice.split))
            say_on_stderr(choice.note)
        key = (choice.shipped.file, choice.split)
        if key not in self.models:
            self.models[key] = choice.load(self.args.backend).to(self.device)
        return self.models[key], (f"noise sigma ~{wanted:.1f}, {choice.summary}" if self.sigma is None else "")


def run(args) -> int:
    import time

    from mdrn_fast.errors import UsageError, check_backend_on, resolve_device
    from mdrn_fast.flags import print_error
    from mdrn_fast.images import ImageError, load_image, save_image
    from mdrn_fast.inference import denoise

    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"-o {out_dir}: a file; -o names the output folder")
    device = resolve_device(args.device)
    check_backend_on(args.backend, device)
    choose = ModelChooser(args, device)
    files, problems = input_files(args.inputs, args.recursive)
    for p in problems:
        print_error(f"error: {p}")
    if not files:
        raise UsageError("no images to denoise in " + ", ".join(args.inputs))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"-o {out_dir}: cannot create this folder ({e.strerror})") from None
    names = output_names(files)
    failed, start = [], time.perf_counter()
    # a bad file is reported and the others go on; any other failure (weights that do not load, a full disk)
    # would fail every file the same way, and so stops the command with its one line
    for i, path in enumerate(files, start=1):
        target = out_dir / names[path]
        counter = f"[{i} of {len(files)}] " if len(files) > 1 else ""
        try:
            if target.exists() and not args.overwrite:
                raise ImageError(f"{target} exists (pass --overwrite to replace it)")
            image = load_image(path)
            model, note = choose(image, path)
            result = image.pixels if model is None else denoise(
                image.pixels, model, tile=args.tile, overlap=args.overlap, memory=args.memory, mode=args.tiling,
                progress=True)
            try:  # exclusive unless --overwrite: another process may have written target meanwhile
                save_image(target, result, bits=image.bits, alpha=image.alpha, overwrite=args.overwrite)
            except FileExistsError:
                raise ImageError(f"{target} was written by another process meanwhile; kept it (pass --overwrite "
                                 "to replace it)") from None
            print(f"{counter}{path} -> {target}" + (f" ({note})" if note else ""))
        except ImageError as e:
            failed.append(path)
            print_error(f"{counter}error: {e}")
        except MemoryError:
            failed.append(path)
            print_error(f"{counter}error: {path}: not enough memory to denoise it (a smaller --memory may help)")
    if len(files) > 1 or failed or problems:
        seconds = time.perf_counter() - start
        print(f"denoised {len(files) - len(failed)} of {len(files)} image(s) into {out_dir} in {seconds:.1f} s"
              + (f"; {len(failed)} failed: " + ", ".join(p.name for p in failed) if failed else "")
              + (f"; {len(problems)} input(s) held no images" if problems else ""),
              file=sys.stderr if failed or problems else sys.stdout)
    return 1 if failed or problems else 0
