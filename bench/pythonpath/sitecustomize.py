"""Makes the source tree importable as installed, for the GPU scripts (bench/gpu_check.sh puts this folder and
the repository root on PYTHONPATH): setup.py maps the package mdrn_fast.kernels to the top-level kernels/
folder, which an editable install's finder resolves and a plain PYTHONPATH does not. So that a failed or
skipped build still leaves the triton backend (which needs no build) importable, this adds a last-resort finder
for that one package; an installed mapping, where there is one, is found first. Then it runs the
sitecustomize this one shadows, if any.
"""
import importlib.util
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_KERNELS = os.path.join(os.path.dirname(os.path.dirname(_HERE)), "kernels")


class _TreeKernels:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != "mdrn_fast.kernels" or not os.path.isfile(os.path.join(_KERNELS, "__init__.py")):
            return None
        return importlib.util.spec_from_file_location(name, os.path.join(_KERNELS, "__init__.py"),
                                                      submodule_search_locations=[_KERNELS])


sys.meta_path.append(_TreeKernels)


def _run_shadowed() -> None:
    for entry in sys.path:
        folder = os.path.abspath(entry or os.getcwd())
        candidate = os.path.join(folder, "sitecustomize.py")
        if folder != _HERE and os.path.isfile(candidate):
            spec = importlib.util.spec_from_file_location("_sitecustomize_shadowed", candidate)
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
            return


_run_shadowed()
