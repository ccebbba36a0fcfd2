"""The GPU inference plan of the triton backend (mdrn_fast/gpu_plan.py): NHWC Triton convolutions and composed
layers give the op-by-op result on odd shapes, every branch layout, tiles, after the weights change, in the
input's layout; it runs only where it applies. On the CPU the kernels run on the Triton interpreter; on a GPU
the same tests run there, plus realistic sizes in each dtype and CUDA graph replay."""
import pytest
import torch

from helpers import HAS_GPU, assert_close, device_for, require
from mdrn_fast import MDRN, gpu_plan
from mdrn_fast.inference import denoise_tensor

pytestmark = pytest.mark.skipif(gpu_plan.unavailable_reason() is not None,
                                reason=f"triton unavailable: {gpu_plan.unavailable_reason()}")
DEV = device_for("triton")


def model(in_channels=1, channels=16, blocks=2, scales=(2, 4)):
    torch.manual_seed(0)
    m = MDRN(in_channels=in_channels, channels=channels, blocks=blocks, scales=scales, backend="triton").eval()
    with torch.no_grad():  # weights larger than the default init, so that every branch matters in the output
        for p in m.parameters():
            p.normal_(0, 0.15)
    return m.to(DEV)


def both(m, y, **kw):
    """(plan, op by op on the torch reference: the triton ops equal it, tests/test_ops_parity.py) of m(y, **kw)
    without gradients."""
    with torch.no_grad():
        ref = m.set_backend("torch")(y, **kw)
        return m.set_backend("triton")(y, **kw), ref


def tol(ref: torch.Tensor) -> tuple[float, float]:
    """float32, composed weights reassociate sums: a few ulps of the largest value."""
    return 2e-6 * ref.abs().max().item() + 1e-6, 1e-5


@pytest.mark.parametrize("shape,scales,channels,blocks", [
    ((1, 1, 37, 50), (2, 4), 16, 2),
    ((2, 3, 20, 28), (2, 4), 32, 2),
    ((2, 2, 13, 9), (2,), 8, 2),
    ((1, 1, 12, 16), (), 8, 1),
    ((1, 1, 9, 7), (4,), 24, 1),
])
def test_plan_equals_op_by_op(shape, scales, channels, blocks):
    m = model(shape[1], channels, blocks, scales)
    y = torch.rand(shape, device=DEV)
    with torch.no_grad():
        assert gpu_plan.applies(m, y)
    (out, feats), (ref, feats_ref) = both(m, y, return_features=True)
    assert_close(out, ref, *tol(ref), "output")
    assert len(feats) == blocks
    for i, (a, e) in enumerate(zip(feats, feats_ref)):
        assert_close(a, e, *tol(e), f"block {i}")


def test_layout_follows_the_input_and_the_input_is_left_alone():
    m = model(3)
    y = torch.rand(2, 3, 16, 20, device=DEV)
    keep = y.clone()
    out, ref = both(m, y)
    assert out.is_contiguous() and torch.equal(y, keep)
    out_cl, _ = both(m, y.contiguous(memory_format=torch.channels_last))
    assert out_cl.is_contiguous(memory_format=torch.channels_last)
    assert_close(out_cl, ref, *tol(ref), "channels-last input")


def test_plan_follows_new_weights():
    m = model()
    y = torch.rand(1, 1, 16, 16, device=DEV)
    first, _ = both(m, y)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.15)
    out, ref = both(m, y)
    assert_close(out, ref, *tol(ref), "after new weights")
    assert (out - first).abs().max() > 1e-3


@pytest.mark.parametrize("mode", ["exact", "global"])
def test_tiles_through_the_plan(mode):
    m = model(1, 8, 1)
    y = torch.rand(1, 1, 36, 28, device=DEV)
    ref = denoise_tensor(y, m.set_backend("torch"), tile=16, mode=mode)
    assert_close(denoise_tensor(y, m.set_backend("triton"), tile=16, mode=mode), ref, *tol(ref), f"{mode} tiles")


def test_where_the_plan_applies():
    m = model()
    y = torch.rand(1, 1, 16, 16, device=DEV)
    with torch.no_grad():
        assert gpu_plan.applies(m, y)
        assert not gpu_plan.applies(m, y.double())  # a mismatch gets op by op's error
        assert not gpu_plan.applies(m.double(), y.double())  # float64 runs op by op, in float64
        m.float()
        assert not gpu_plan.applies(m.set_backend("torch"), y)
        m.set_backend("triton").use_gpu_plan = False
        assert not gpu_plan.applies(m, y)
        m.use_gpu_plan = True
        assert not gpu_plan.applies(MDRN(channels=8, blocks=1, scales=(2, 4, 8), backend="triton").to(DEV), y)
    assert not gpu_plan.applies(m, y)  # gradients wanted: training runs op by op
    m(y).sum().backward()
    assert m.head.weight.grad is not None


def test_float16_within_its_own_rounding():
    """float16 weights and input (the interpreter has no bfloat16; on a GPU the realistic-size test has both)."""
    m = model(1, 16, 2)
    y = torch.rand(1, 1, 20, 24, device=DEV)
    with torch.no_grad():
        truth = m.set_backend("torch").double()(y.double())
        ref = m.half()(y.half())
        got = m.set_backend("triton")(y.half())
    assert got.dtype == torch.float16
    ref_err = (ref.double() - truth).abs().max().item()
    assert (got.double() - truth).abs().max().item() <= 2 * ref_err + 1e-3


@pytest.mark.gpu
@pytest.mark.parametrize("preset", ["mdrn-tiny", "mdrn-base"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_plan_at_realistic_size(preset, dtype):
    """On the GPU, 4x1x128x128: within twice the reference's own error in the dtype (plus 1e-3 of the largest
    value), under autocast for the low precisions as training and the benchmark run them."""
    from mdrn_fast.models import mdrn

    torch.manual_seed(0)
    m = mdrn(preset, backend="triton").cuda().eval()
    y = torch.rand(4, 1, 128, 128, device="cuda")
    with torch.no_grad():
        truth = m.set_backend("torch").double()(y.double())
        m.float()
        with torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
            ref = m(y)
            got = m.set_backend("triton")(y)
    ref_err = (ref.double() - truth).abs().max().item()
    err = (got.double() - truth).abs().max().item()
    print(f"ERRORS gpu plan {preset} {dtype}: {err:.3g} (reference {ref_err:.3g})")
    assert err <= 2 * ref_err + 1e-3 * truth.abs().max().item()


@pytest.mark.gpu
def test_cuda_graph_replay_equals_eager_and_follows_new_input():
    require("triton")
    m = model(1, 16, 2)
    ys = [torch.rand(2, 1, 64, 48, device="cuda") for _ in range(4)]
    with torch.no_grad():
        m.cuda_graphs = False
        eager = [m(y) for y in ys]
        m.cuda_graphs = True
        graphed = [m(y) for y in ys]  # the first runs eagerly, the second captures, the rest replay
    assert len(m._gpu_plans[torch.float32][1].graphs) == 1
    for i, (a, e) in enumerate(zip(graphed, eager)):
        assert torch.equal(a, e), f"call {i}: replay differs from eager"
    assert not graphed[2].data_ptr() == graphed[3].data_ptr()  # each call returns its own tensor


@pytest.mark.skipif(HAS_GPU, reason="on a GPU the realistic-size tests cover this")
def test_no_graphs_on_the_interpreter():
    m = model()
    y = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        m(y), m(y)
    assert not m._gpu_plans[torch.float32][1].graphs
