"""bias_lrelu and add_residual on every usable backend against the reference, forward and backward."""
import pytest
import torch

from helpers import FUSED, TOLERANCES, assert_close, device_for, require
from mdrn_fast import ops, reference



@pytest.mark.parametrize("backend", FUSED)
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 16, 13, 7), (2, 24, 9, 31), (1, 3, 64, 61)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_bias_lrelu_matches_reference(backend, shape, channels_last):
    require(backend)
    dev = device_for(backend)
    t = torch.randn(shape, device=dev)
    if channels_last:
        t = t.to(memory_format=torch.channels_last)
    b = torch.randn(shape[1], device=dev)
    t1, b1 = t.clone().requires_grad_(), b.clone().requires_grad_()
    t2, b2 = t.clone().requires_grad_(), b.clone().requires_grad_()
    out = ops.bias_lrelu(t1, b1, 0.2, backend=backend)
    ref = reference.bias_lrelu(t2, b2, 0.2)
    atol, rtol = TOLERANCES[torch.float32]
    assert_close(out, ref, atol, rtol, "out")
    g = torch.randn_like(ref)
    out.backward(g)
    ref.backward(g)
    assert_close(t1.grad, t2.grad, atol, rtol, "grad t")
    assert_close(b1.grad, b2.grad, 1e-4, 1e-4, "grad bias")


def test_bias_lrelu_cpu_gradcheck():
    require("cpu")
    t = torch.randn(2, 5, 7, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t, b: ops.bias_lrelu(t, b, 0.2, backend="cpu"), (t, b))


def test_bias_lrelu_cpu_opcheck():
    require("cpu")
    t = torch.randn(2, 5, 7, 3, requires_grad=True)
    b = torch.randn(5, requires_grad=True)
    torch.library.opcheck(torch.ops.mdrn_fast.bias_lrelu.default, (t, b, 0.2))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_bias_lrelu_cpu_low_precision(dtype):
    require("cpu")
    t = torch.randn(2, 8, 11, 13)
    b = torch.randn(8)
    out = ops.bias_lrelu(t.to(dtype), b.to(dtype), 0.2, backend="cpu")
    atol, rtol = TOLERANCES[dtype]
    assert out.dtype == dtype
    assert_close(out, reference.bias_lrelu(t.to(dtype).float(), b.to(dtype).float(), 0.2), atol, rtol)


def test_bias_lrelu_compiles():
    require("cpu")
    t, b = torch.randn(2, 4, 5, 6), torch.randn(4)
    fn = torch.compile(lambda t, b: ops.bias_lrelu(t, b, 0.2, backend="cpu") * 2, fullgraph=True, backend="eager")
    assert_close(fn(t, b), 2 * reference.bias_lrelu(t, b, 0.2), 1e-6, 1e-6)


def test_bias_lrelu_rejects_bad_input():
    with pytest.raises(ValueError, match="bias: expected shape"):
        ops.bias_lrelu(torch.randn(1, 4, 3, 3), torch.randn(5), backend="torch")
    with pytest.raises(TypeError, match="floating"):
        ops.bias_lrelu(torch.ones(1, 4, 3, 3, dtype=torch.int32), torch.randn(4))
    with pytest.raises(TypeError, match="dtype"):
        ops.bias_lrelu(torch.randn(1, 4, 3, 3), torch.randn(4, dtype=torch.float64))
