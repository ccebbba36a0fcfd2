"""Bad input fails clearly; odd input (NaN, Inf, float64) behaves as the reference does. (Random shapes,
dtypes and layouts: test_random_inputs.py.)"""
import pytest
import torch

from helpers import HAS_GPU, assert_close, device_for, usable_backends
from mdrn_fast.registry import BACKENDS
from mdrn_fast import ops
from op_cases import OPS, leaves, make_case, prepare

USABLE = usable_backends(list(BACKENDS))

x4, b4 = torch.randn(1, 4, 8, 8), torch.randn(4)
BAD_CALLS = [
    ("int tensor", lambda: ops.bias_lrelu(x4.int(), b4), TypeError, "t: expected a floating dtype"),
    ("not a tensor", lambda: ops.add_residual(x4.tolist(), x4), TypeError, "t: expected a torch.Tensor"),
    ("wrong rank", lambda: ops.bias_lrelu(x4[0], b4), ValueError, "t: expected a 4-D tensor"),
    ("bias channels", lambda: ops.bias_lrelu(x4, torch.randn(3)), ValueError, r"bias: expected shape \(4,\)"),
    ("mixed dtypes", lambda: ops.add_residual(x4, x4.double()), TypeError, "r has dtype torch.float64"),
    ("shape mismatch", lambda: ops.add_residual(x4, x4[:, :2]), ValueError, "r: expected shape"),
    ("zero-size", lambda: ops.bias_lrelu(x4[:0], b4), ValueError, "t: expected a non-empty tensor"),
    ("empty batch", lambda: ops.degrade(x4[:0], torch.randn(4, 4, 2, 2), b4, 2), ValueError, "x: expected a non-empty"),
    ("degrade weight", lambda: ops.degrade(x4, torch.randn(4, 4, 3, 3), b4, 2), ValueError, "weight: expected shape"),
    ("degrade scale", lambda: ops.degrade(x4, torch.randn(4, 4, 2, 2), b4, 0), ValueError, "scale: expected a positive"),
    ("degrade too small", lambda: ops.degrade(x4[..., :1], torch.randn(4, 4, 2, 2), b4, 2), ValueError, "smaller than scale"),
    ("reconstruct channels", lambda: ops.reconstruct(x4, torch.randn(6, 4, 1, 1), torch.randn(6), 2), ValueError,
     "not a multiple of scale"),
    ("fuse no parts", lambda: ops.fuse([], torch.randn(4, 4, 1, 1), b4), ValueError, "parts: expected at least one"),
    ("fuse spatial", lambda: ops.fuse([x4, x4[..., :4]], torch.randn(4, 8, 1, 1), b4), ValueError, r"parts\[1\]"),
    ("fuse weight", lambda: ops.fuse([x4, x4], torch.randn(4, 4, 1, 1), b4), ValueError, "weight: expected shape"),
    ("attention w2", lambda: ops.channel_attention(x4, x4, torch.randn(1, 4), torch.randn(1), torch.randn(4, 2),
                                                   b4), ValueError, "w2: expected shape"),
    ("noise sigma shape", lambda: ops.add_noise(x4, torch.tensor([1.0, 2.0])), ValueError, "sigma: expected"),
    ("unknown backend", lambda: ops.add_residual(x4, x4, backend="metal"), RuntimeError, "unknown backend"),
]


@pytest.mark.parametrize("call,error,message", [c[1:] for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS])
def test_bad_input_names_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA GPU for a mixed-device call")
def test_mixed_devices():
    with pytest.raises(ValueError, match="bias is on cpu but t is on cuda"):
        ops.bias_lrelu(x4.cuda(), b4)


@pytest.mark.parametrize("backend", USABLE)
@pytest.mark.parametrize("op", OPS)
def test_nan_and_inf_propagate_like_the_reference(backend, op):
    dev = device_for(backend)
    case = make_case(op, (1, 4, 8, 12))
    first = leaves(case)[0][1]
    first[0, 0, 1, 2] = float("nan")
    first[0, 1, 3, 4] = float("inf")
    got = getattr(ops, op)(**prepare(case, torch.float32, dev, grad=False), backend=backend).cpu()
    ref = getattr(ops, op)(**prepare(case, torch.float32, "cpu", grad=False), backend="torch")
    assert torch.equal(torch.isnan(got), torch.isnan(ref)), f"{op}: NaN positions differ"
    assert torch.equal(torch.isinf(got), torch.isinf(ref)), f"{op}: Inf positions differ"


@pytest.mark.parametrize("backend", USABLE)
def test_float64_is_supported_or_refused_clearly(backend):
    dev = device_for(backend)
    case = make_case("degrade", (1, 3, 8, 8))
    try:
        out = ops.degrade(**prepare(case, torch.float64, dev, grad=False), backend=backend)
    except (TypeError, RuntimeError) as e:
        assert "float64" in str(e) or "Double" in str(e), f"unclear error for float64: {e}"
        return
    ref = ops.degrade(**prepare(case, torch.float64, "cpu", grad=False), backend="torch")
    assert out.dtype == torch.float64
    assert_close(out, ref, 1e-10, 1e-8, "float64 degrade")


def test_auto_says_once_when_it_falls_back_to_the_reference(monkeypatch):
    import warnings

    from mdrn_fast import registry

    monkeypatch.setitem(registry._STATUS, "cpu", "the extension is not built (test)")
    monkeypatch.setattr(registry, "_WARNED", set())
    with pytest.warns(RuntimeWarning, match="backend 'auto' runs the torch reference on cpu tensors.*not built"):
        ops.add_residual(x4, x4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ops.bias_lrelu(x4, b4)  # the same situation again: not repeated
