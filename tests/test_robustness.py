"""Bad input fails clearly; odd input (NaN, views, random shapes) behaves as the reference does."""
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import HAS_GPU, TOLERANCES, assert_close, device_for
from mdrn_fast import MDRN, ops
from mdrn_fast.registry import unavailable_reason
from op_cases import OPS, leaves, make_case, prepare

BACKENDS = ["torch", "triton", "cpu", "cuda"]
USABLE = [b for b in BACKENDS if unavailable_reason(b) is None and (b != "cuda" or HAS_GPU)]
# the Triton interpreter is slow: fewer random examples there
EXAMPLES = {"torch": 25, "cpu": 25, "cuda": 25, "triton": 25 if HAS_GPU else 8}

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


def _layout(t: torch.Tensor, kind: str) -> torch.Tensor:
    """The same values in another memory layout: contiguous, channels_last, or a strided view."""
    if t.dim() != 4 or kind == "contiguous":
        return t
    if kind == "channels_last":
        return t.contiguous(memory_format=torch.channels_last)
    big = torch.zeros(t.shape[0], t.shape[1], t.shape[2], 2 * t.shape[3], dtype=t.dtype, device=t.device)
    big[..., ::2] = t
    return big[..., ::2]  # non-contiguous: every other column of a wider tensor


def _random_op_check(backend, op, n, c, h, w, scale, layout, dtype):
    dev = device_for(backend)
    case = make_case(op, (n, c, h, w), scale) if op in ("degrade", "reconstruct") else make_case(op, (n, c, h, w))
    args = prepare(case, dtype, dev, grad=False)
    args = {k: [_layout(p, layout).requires_grad_() for p in v] if isinstance(v, list)
            else _layout(v, layout).requires_grad_() if isinstance(v, torch.Tensor) else v for k, v in args.items()}
    ref_args = prepare(case, torch.float64, "cpu")
    out = getattr(ops, op)(**args, backend=backend)
    ref = getattr(ops, op)(**ref_args, backend="torch")
    g = torch.randn(ref.shape, dtype=torch.float64)
    out.backward(g.to(device=dev, dtype=dtype))
    ref.backward(g)
    atol, rtol = TOLERANCES[dtype]
    k = max(h * w * n, 1) ** 0.5  # weight/bias gradients sum over N*H*W terms
    assert_close(out, ref, atol * 4, rtol * 4, f"{op} out")
    for (name, a), (_, e) in zip(leaves(args), leaves(ref_args)):
        assert_close(a.grad, e.grad, atol * 4 * k, rtol * 40, f"{op} grad {name}")


@pytest.mark.parametrize("backend", USABLE)
def test_random_shapes_dtypes_layouts(backend):
    dtypes = [torch.float32, torch.float16] + ([torch.bfloat16] if HAS_GPU else [])

    @settings(max_examples=EXAMPLES[backend], deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(op=st.sampled_from(OPS), n=st.integers(1, 3), c=st.sampled_from([1, 2, 3, 5, 16, 24]),
           h4=st.integers(1, 6), w4=st.integers(1, 6), scale=st.sampled_from([2, 4]),
           layout=st.sampled_from(["contiguous", "channels_last", "strided"]), dtype=st.sampled_from(dtypes))
    def check(op, n, c, h4, w4, scale, layout, dtype):
        _random_op_check(backend, op, n, c, 4 * h4, 4 * w4, scale, layout, dtype)

    check()


@settings(max_examples=20, deadline=None, derandomize=True)
@given(n=st.integers(1, 2), c=st.sampled_from([1, 3]), h=st.integers(1, 97), w=st.integers(1, 131))
def test_model_any_size(n, c, h, w):
    m = MDRN(in_channels=c, channels=4, blocks=1, backend="torch")
    y = torch.rand(n, c, h, w)
    out = m(y)
    assert out.shape == y.shape and torch.isfinite(out).all()
