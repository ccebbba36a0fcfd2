"""torch.library.opcheck of every op of both fused backends: the C++ ops (``mdrn_fast::*``, on the CPU and, where
built, on CUDA) and the Triton ops (``mdrn_fast_triton::*``, on the GPU, or on the CPU under the interpreter).
It checks each op's schema, its fake implementation (shapes, dtypes, strides: what torch.compile traces) and
its autograd registration against the real kernels."""
import pytest
import torch

from helpers import device_for, require
from op_cases import OPS, make_case, prepare, schema_args

# (backend, op namespace, device)
TARGETS = [("cpu", "mdrn_fast", "cpu"), ("cuda", "mdrn_fast", "cuda"),
           ("triton", "mdrn_fast_triton", device_for("triton"))]
IDS = [f"{backend}" for backend, _, _ in TARGETS]
DISTILL_OPS = ["lp_distance", "channel_energy", "fakd"]


@pytest.mark.parametrize("backend,namespace,device", TARGETS, ids=IDS)
@pytest.mark.parametrize("op", OPS)
def test_model_ops(op, backend, namespace, device):
    require(backend)
    case = prepare(make_case(op, (2, 8, 12, 16)), torch.float32, device)
    torch.library.opcheck(getattr(getattr(torch.ops, namespace), op).default, schema_args(op, case))


@pytest.mark.parametrize("backend,namespace,device", TARGETS, ids=IDS)
@pytest.mark.parametrize("op", DISTILL_OPS)
def test_distill_ops(op, backend, namespace, device):
    require(backend)
    fs = torch.randn(2, 5, 7, 9, device=device, requires_grad=True)
    ft = torch.randn(2, 5, 7, 9, device=device)
    args = {"lp_distance": (fs, ft, False), "channel_energy": (fs,), "fakd": (fs, ft)}[op]
    torch.library.opcheck(getattr(getattr(torch.ops, namespace), op).default, args)


@pytest.mark.parametrize("backend,namespace,device", TARGETS, ids=IDS)
def test_add_noise(backend, namespace, device):
    """The schema, fake and traced-graph checks (opcheck's others rerun the op and compare: not for a random op)."""
    require(backend)
    x = torch.rand(2, 3, 8, 8, device=device)
    std = torch.tensor([0.1, 0.2], device=device)
    torch.library.opcheck(getattr(torch.ops, namespace).add_noise.default, (x, std, 5, False),
                          test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_static"))
