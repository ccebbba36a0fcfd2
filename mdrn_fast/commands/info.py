"""mdrn-fast info: versions, the extension's build, which backends are usable here, the GPU."""
from __future__ import annotations

import platform

import torch

HELP = "show versions, the extension build, usable backends and the GPU"


def add_arguments(parser) -> None:
    pass


def report() -> list[tuple[str, str]]:
    import mdrn_fast
    from mdrn_fast import extension
    from mdrn_fast.registry import BACKENDS, unavailable_reason

    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = "not installed"
    build = extension.build_info()
    rows = [
        ("mdrn_fast", mdrn_fast.__version__),
        ("python", platform.python_version()),
        ("torch", f"{torch.__version__} (CUDA {torch.version.cuda})"),
        ("triton", triton_version),
        ("extension build", ", ".join(f"{k}={v}" for k, v in build.items()) or "not built"),
    ]
    for b in BACKENDS:
        reason = unavailable_reason(b)
        rows.append((f"backend {b}", "usable" if reason is None else f"unavailable: {reason}"))
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        rows.append(("GPU", f"{p.name}, {p.total_memory / 2**30:.0f} GiB, sm_{p.major}{p.minor}"))
    else:
        rows.append(("GPU", "none visible to torch"))
    from mdrn_fast.datasets import MANIFEST, default_root, status

    here = [name for name in MANIFEST if status(name)[0] == status(name)[1]]
    rows.append(("data folder", f"{default_root()}: {', '.join(here) or 'no standard set'} "
                                "(`mdrn-fast data list`)"))
    return rows


def run(args) -> int:
    rows = report()
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0
