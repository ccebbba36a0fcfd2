"""The CPU inference plan (mdrn_fast/cpu_plan.py): composed weights and channels-last oneDNN convolutions give the
op-by-op result, on odd shapes, every branch layout, tiles, and after the weights change; it runs only where it
applies."""
import pytest
import torch
import torch.nn.functional as F

from helpers import assert_close, require
from mdrn_fast import MDRN, cpu_plan
from mdrn_fast.inference import denoise_tensor

pytestmark = pytest.mark.skipif(cpu_plan.unavailable_reason() is not None,
                                reason=f"cpu plan unavailable: {cpu_plan.unavailable_reason()}")


def model(in_channels=1, channels=16, blocks=2, scales=(2, 4)):
    torch.manual_seed(0)
    m = MDRN(in_channels=in_channels, channels=channels, blocks=blocks, scales=scales, backend="cpu").eval()
    with torch.no_grad():  # weights larger than the default init, so that every branch matters in the output
        for p in m.parameters():
            p.normal_(0, 0.15)
    return m


def both(m, y, **kw):
    """(plan, op by op) of m(y, **kw) without gradients."""
    with torch.no_grad():
        m.use_cpu_plan = False
        ref = m(y, **kw)
        m.use_cpu_plan = True
        return m(y, **kw), ref


def tol(ref: torch.Tensor) -> tuple[float, float]:
    """float32, composed weights reassociate sums: a few ulps of the largest value."""
    return 2e-6 * ref.abs().max().item() + 1e-6, 1e-5


@pytest.mark.parametrize("shape,scales,channels,blocks", [
    ((1, 1, 37, 50), (2, 4), 16, 2),
    ((2, 3, 20, 28), (2, 4), 32, 3),
    ((2, 2, 13, 9), (2,), 8, 2),
    ((1, 1, 12, 16), (), 8, 1),
])
def test_plan_equals_op_by_op(shape, scales, channels, blocks):
    m = model(shape[1], channels, blocks, scales)
    y = torch.rand(shape)
    (out, feats), (ref, feats_ref) = both(m, y, return_features=True)
    assert_close(out, ref, *tol(ref), "output")
    assert len(feats) == blocks
    for i, (a, e) in enumerate(zip(feats, feats_ref)):
        assert_close(a, e, *tol(e), f"block {i}")


def test_layout_follows_the_input_and_the_input_is_left_alone():
    m = model(3)
    y = torch.rand(2, 3, 16, 20)
    keep = y.clone()
    out, ref = both(m, y)
    assert out.is_contiguous() and torch.equal(y, keep)
    out_cl, _ = both(m, y.contiguous(memory_format=torch.channels_last))
    assert out_cl.is_contiguous(memory_format=torch.channels_last)
    assert_close(out_cl, ref, *tol(ref), "channels-last input")


def test_strides_of_size_one_dims_do_not_matter():
    """A photo's [H, W, 1] array seen as [1, 1, H, W] has strides (1, 1, W, 1): the same pixels."""
    m = model()
    hwc = torch.rand(24, 20, 1)
    y = hwc.permute(2, 0, 1)[None]
    out, ref = both(m, y)
    assert_close(out, ref, *tol(ref), "strided input")


def test_plan_follows_new_weights():
    """The composed weights are rebuilt when a parameter changes in place (load_state_dict, an optimizer)."""
    m = model()
    y = torch.rand(1, 1, 24, 24)
    first, _ = both(m, y)
    other = model()
    with torch.no_grad():
        for p in other.parameters():
            p.normal_(0, 0.15)
    m.load_state_dict(other.state_dict())
    out, ref = both(m, y)
    assert_close(out, ref, *tol(ref), "after load_state_dict")
    assert (out - first).abs().max() > 1e-3


@pytest.mark.parametrize("mode", ["exact", "global", "local"])
def test_tiles_through_the_plan(mode):
    m = model(1, 16, 2)
    y = torch.rand(1, 1, 72, 88)
    m.use_cpu_plan = False
    ref = denoise_tensor(y, m, tile=16, mode=mode)
    m.use_cpu_plan = True
    assert_close(denoise_tensor(y, m, tile=16, mode=mode), ref, *tol(ref), f"{mode} tiles")


def test_where_the_plan_applies():
    m = model()
    y = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        assert cpu_plan.applies(m, y)
        assert not cpu_plan.applies(m, y.double())  # float64 runs op by op, in float64
        assert not cpu_plan.applies(m.double(), y)  # and a mismatch gets op by op's error
        m.float()
        assert not cpu_plan.applies(m.set_backend("torch"), y)
        m.set_backend("cpu").use_cpu_plan = False
        assert not cpu_plan.applies(m, y)
    m.use_cpu_plan = True
    assert not cpu_plan.applies(m, y)  # gradients wanted: training runs op by op
    out = m(y)
    out.sum().backward()
    assert m.head.weight.grad is not None


def test_inference_mode_too():
    m = model()
    y = torch.rand(1, 1, 20, 24)
    with torch.inference_mode():
        out = m(y)
    _, ref = both(m, y)
    assert_close(out, ref, *tol(ref), "inference_mode")


def test_float64_inference_stays_float64():
    m = model().double()
    y = torch.rand(1, 1, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        assert m(y).dtype == torch.float64


def reconstruct_sum_reference(hs, wts, biases, scales):
    """Sum of pixel_shuffle(conv1x1(h) + b) with the 1x1's outputs reordered from (i, j, c) to (c, i, j)."""
    out = 0
    for h, wt, b, s in zip(hs, wts, biases, scales):
        y = torch.einsum("nkhw,ko->nohw", h, wt) + b.view(1, -1, 1, 1)
        n, k, lh, lw = y.shape
        c = k // (s * s)
        y = y.view(n, s, s, c, lh, lw).permute(0, 3, 1, 2, 4, 5).reshape(n, k, lh, lw)
        out = out + F.pixel_shuffle(y, s)
    return out


@pytest.mark.parametrize("scales,shape", [((2, 4), (2, 5, 12, 20)), ((3,), (1, 4, 9, 6)), ((1, 2), (1, 3, 4, 6)),
                                          ((2, 4), (1, 8, 64, 700))])
def test_reconstruct_sum(scales, shape):
    require("cpu")
    n, c, h, w = shape
    cl, ci = torch.channels_last, 6
    hs = [torch.randn(n, ci, h // s, w // s).contiguous(memory_format=cl) for s in scales]
    wts = [torch.randn(ci, s * s * c) for s in scales]
    biases = [torch.randn(s * s * c) for s in scales]
    out = torch.ops.mdrn_fast.reconstruct_sum(hs, wts, biases, list(scales))
    assert out.is_contiguous(memory_format=cl)
    assert_close(out, reconstruct_sum_reference(hs, wts, biases, scales), 1e-5, 1e-5, "reconstruct_sum")


def test_reconstruct_sum_refuses_what_does_not_fit():
    require("cpu")
    f = torch.ops.mdrn_fast.reconstruct_sum
    h, wt, b = torch.randn(1, 4, 3, 3), torch.randn(4, 16), torch.randn(16)
    with pytest.raises(RuntimeError, match="one weight, bias and scale per branch"):
        f([h], [wt], [b], [2, 4])
    with pytest.raises(RuntimeError, match="a bias: expected shape"):
        f([h], [wt], [torch.randn(8)], [2])
    with pytest.raises(RuntimeError, match="a weight: expected shape"):
        f([h], [torch.randn(5, 16)], [b], [2])
    with pytest.raises(RuntimeError, match="float32"):
        f([h.double()], [wt.double()], [b.double()], [2])
