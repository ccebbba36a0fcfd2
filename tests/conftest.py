"""Test setup: Triton runs on the CPU interpreter when no GPU is present; float32 means IEEE float32 (no TF32).

TRITON_INTERPRET must be set before triton is first imported, hence here, at collection start.
"""
import os

import torch

HAS_GPU = torch.cuda.is_available()
if not HAS_GPU:
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

# The torch reference runs its convolutions on cuDNN, which uses TF32 for float32 by default (about 1e-3
# relative error, far above the float32 tolerances here), while the fused GEMMs follow the matmul switch (off
# by default). Tests compare IEEE float32 on both sides; a test about TF32 turns it on itself.
torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU (none visible to torch)")
    for item in items:
        if "gpu" in item.keywords and not HAS_GPU:
            item.add_marker(skip_gpu)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
