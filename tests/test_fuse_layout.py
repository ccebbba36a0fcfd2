"""The C++ fuse keeps channels_last: channels-last parts give a channels-last output and channels-last part
gradients, computed as plain GEMMs over [N*H*W, C] rows (csrc/fuse.cpp), equal to the reference; anything else
keeps the NCHW path. On the CPU here, on CUDA where built."""
import pytest
import torch

from helpers import TOLERANCES, assert_close, device_for, require
from mdrn_fast import ops
from mdrn_fast.ops.fuse import uses_channels_last
from op_cases import make_case, prepare

CL = torch.channels_last
BACKENDS = ["cpu", "cuda"]


def _parts_and_grads(backend, shape, dtype, layouts):
    """fuse on the backend with part i in layouts[i] ("cl" or "nchw"), and the float64 reference; both backward."""
    case = make_case("fuse", shape)
    args = prepare(case, dtype, device_for(backend))
    args["parts"] = [(p.detach().contiguous(memory_format=CL) if lay == "cl" else p.detach()).requires_grad_()
                     for p, lay in zip(args["parts"], layouts)]
    ref = prepare(case, torch.float64, "cpu")
    out = ops.fuse(**args, backend=backend)
    expected = ops.fuse(**ref, backend="torch")
    g = torch.randn(out.shape, dtype=torch.float64)
    out.backward(g.to(out))
    expected.backward(g)
    return args, out, ref, expected


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(2, 8, 12, 16), (3, 5, 7, 9), (1, 32, 16, 12)])
def test_channels_last_parts_stay_channels_last_and_match(backend, shape):
    require(backend)
    args, out, ref, expected = _parts_and_grads(backend, shape, torch.float32, ["cl"] * 3)
    assert uses_channels_last(args["parts"])
    assert out.is_contiguous(memory_format=CL) and not out.is_contiguous()
    atol, rtol = TOLERANCES[torch.float32]
    assert_close(out, expected, atol, rtol, "fuse out")
    for p, e in zip(args["parts"], ref["parts"]):
        assert p.grad.is_contiguous(memory_format=CL)
        assert_close(p.grad, e.grad, atol * 10, rtol * 10, "fuse grad part")
    for name in ("weight", "bias"):
        e = ref[name].grad
        assert_close(args[name].grad, e, 1e-4 * e.abs().max().item(), rtol * 10, f"fuse grad {name}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layouts", [["nchw"] * 3, ["cl", "nchw", "cl"], ["nchw", "cl", "cl"]])
def test_any_nchw_part_keeps_the_nchw_path(backend, layouts):
    require(backend)
    args, out, ref, expected = _parts_and_grads(backend, (2, 8, 12, 16), torch.float32, layouts)
    assert not uses_channels_last(args["parts"]) and out.is_contiguous()
    atol, rtol = TOLERANCES[torch.float32]
    assert_close(out, expected, atol, rtol, "fuse out")
    for p, e in zip(args["parts"], ref["parts"]):
        assert_close(p.grad, e.grad, atol * 10, rtol * 10, "fuse grad part")


def test_channels_last_gradcheck_float64():
    require("cpu")
    case = make_case("fuse", (2, 4, 5, 3))
    args = prepare(case, torch.float64, "cpu")
    parts = [p.detach().contiguous(memory_format=CL).requires_grad_() for p in args["parts"]]

    def f(p0, p1, p2, weight, bias):
        return ops.fuse([p0, p1, p2], weight, bias, backend="cpu")

    assert torch.autograd.gradcheck(f, (*parts, args["weight"], args["bias"]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_channels_last_fake_matches_the_kernel(backend):
    """opcheck on channels-last parts: the fake's strides (what torch.compile traces) are the kernel's."""
    require(backend)
    args = prepare(make_case("fuse", (2, 8, 12, 16)), torch.float32, device_for(backend), channels_last=True)
    torch.library.opcheck(torch.ops.mdrn_fast.fuse.default, (args["parts"], args["weight"], args["bias"]))
