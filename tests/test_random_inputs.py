"""Random shapes, dtypes and memory layouts (hypothesis): every op on every usable backend against the float64
reference, and the model at any input size. Skipped, with the reason, where hypothesis is not installed."""
import pytest
import torch

pytest.importorskip("hypothesis", reason="the random-input tests need hypothesis (pip install -e .[test])")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from helpers import HAS_GPU, TOLERANCES, assert_close, device_for, usable_backends  # noqa: E402
from mdrn_fast.registry import BACKENDS  # noqa: E402
from mdrn_fast import MDRN, ops  # noqa: E402
from op_cases import OPS, leaves, make_case, prepare  # noqa: E402

USABLE = usable_backends(list(BACKENDS))
# the Triton interpreter is slow: fewer random examples there
EXAMPLES = {"torch": 25, "cpu": 25, "cuda": 25, "triton": 25 if HAS_GPU else 8}


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
