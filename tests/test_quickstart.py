"""quickstart.sh, the one command from a fresh clone to a denoised picture: its argument handling, and its reuse
path (an environment that already has torch and the built package: this one) denoising the bundled sample.
The download and build steps are what .ci/run itself does from scratch."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).parents[1]
SCRIPT = ROOT / "quickstart.sh"


def quickstart(*args, cwd=None):
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=600,
                          cwd=cwd)


def test_help_and_usage_mistakes():
    proc = quickstart("--help")
    assert proc.returncode == 0 and "usage: ./quickstart.sh" in proc.stdout and "--cuda" in proc.stdout
    for args, message in ((["--bogus"], "unknown option --bogus"), (["no-such-photo.png"], "no such file"),
                          (["-o"], "-o needs a folder"), (["--venv"], "--venv needs a folder")):
        proc = quickstart(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert proc.stderr.strip().count("\n") == 0 and message in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr


@pytest.mark.skipif(sys.prefix == sys.base_prefix or not (Path(sys.prefix) / "bin" / "mdrn-fast").exists(),
                    reason="needs to run inside a virtual environment with mdrn-fast installed (as .ci/run does)")
def test_a_ready_environment_is_reused_and_the_sample_denoised_twice(tmp_path):
    (Path(sys.prefix) / ".mdrn-fast-build").unlink(missing_ok=True)  # adopted from the existing build, not rebuilt
    for run in range(2):
        proc = quickstart("--venv", sys.prefix, "-o", tmp_path / "out", cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "building" not in proc.stdout and "creating" not in proc.stdout and "torch:" not in proc.stdout
        assert f"the denoised picture is {tmp_path / 'out' / 'sample-noisy.png'}" in proc.stdout, proc.stdout
    noisy = np.asarray(Image.open(ROOT / "docs" / "sample-noisy.png"), np.float32)
    clean = np.asarray(Image.open(tmp_path / "out" / "sample-noisy.png"), np.float32)
    assert clean.shape == noisy.shape
    # the noise (sigma 25) is gone: the output is far smoother than the input
    assert np.abs(np.diff(clean, axis=1)).mean() < 0.5 * np.abs(np.diff(noisy, axis=1)).mean()
