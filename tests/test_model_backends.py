"""The whole MDRN on each fused backend against the torch reference: forward, backward, torch.compile."""
import pytest
import torch

from helpers import FUSED, HAS_GPU, assert_close, device_for, require
from mdrn_fast import MDRN



def pair(backend, in_channels=1):
    torch.manual_seed(0)
    ref = MDRN(in_channels=in_channels, channels=16, blocks=2, backend="torch")
    fused = MDRN(in_channels=in_channels, channels=16, blocks=2, backend=backend)
    fused.load_state_dict(ref.state_dict())
    dev = device_for(backend)
    return ref.to(dev), fused.to(dev), dev


@pytest.mark.parametrize("backend", FUSED)
@pytest.mark.parametrize("shape,channels_last", [((1, 1, 20, 27), False), ((3, 3, 16, 24), True)])
def test_forward_backward_parity(backend, shape, channels_last):
    require(backend)
    ref, fused, dev = pair(backend, shape[1])
    y = torch.rand(shape, device=dev)
    if channels_last:
        y = y.contiguous(memory_format=torch.channels_last)
    out_ref, feats_ref = ref(y, return_features=True)
    out, feats = fused(y, return_features=True)
    assert_close(out, out_ref, 1e-4, 1e-4, "output")
    for i, (a, e) in enumerate(zip(feats, feats_ref)):
        assert_close(a, e, 1e-4, 1e-4, f"feature {i}")
    g = torch.randn_like(out_ref)
    out_ref.backward(g)
    out.backward(g)
    for (name, p), (_, q) in zip(fused.named_parameters(), ref.named_parameters()):
        assert_close(p.grad, q.grad, 1e-3, 1e-3, f"grad {name}")


@pytest.mark.parametrize("backend", FUSED)
def test_compile_fullgraph(backend):
    """torch.compile traces through the backend's custom ops (Inductor on GPU; aot_eager checks fake
    and autograd registrations on CPU, where Inductor cannot run Triton kernels)."""
    require(backend)
    ref, fused, dev = pair(backend)
    compiled = torch.compile(fused, fullgraph=True, backend="inductor" if HAS_GPU else "aot_eager")
    y = torch.rand(2, 1, 16, 20, device=dev)
    out = compiled(y)
    out_ref = ref(y)
    assert_close(out, out_ref, 1e-4, 1e-4, "compiled output")
    out.sum().backward()
    out_ref.sum().backward()
    for (name, p), (_, q) in zip(fused.named_parameters(), ref.named_parameters()):
        assert_close(p.grad, q.grad, 1e-3, 1e-3, f"compiled grad {name}")


def test_compile_reference_fullgraph():
    ref = MDRN(channels=8, blocks=2, backend="torch")
    y = torch.rand(1, 1, 12, 16)
    out = torch.compile(ref, fullgraph=True, backend="aot_eager")(y)
    assert_close(out, ref(y), 1e-5, 1e-5, "compiled reference")
