"""Every fused op, and a training step of the model, gives bitwise the same results when run twice: the weight and
bias gradients are sums of partials in a fixed order (no atomics), so that a resumed run repeats an uninterrupted
one exactly. The pure passes' sums do not even depend on the CPU thread count (fixed partitions)."""
import pytest
import torch

from helpers import FUSED, HAS_GPU, device_for, require
from mdrn_fast import mdrn, ops
from op_cases import OPS, leaves, make_case, prepare


def _run(op, case, backend, dtype, channels_last, grad_out=None):
    args = prepare(case, dtype, device_for(backend), channels_last)
    out = getattr(ops, op)(**args, backend=backend)
    if grad_out is None:
        grad_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(1)).to(out)
    out.backward(grad_out)
    return [out.detach()] + [t.grad for _, t in leaves(args)], grad_out


def _assert_bitwise(first, second, what):
    for i, (a, b) in enumerate(zip(first, second)):
        assert torch.equal(a, b), f"{what}: result {i} differs between two identical runs"


@pytest.mark.parametrize("backend", FUSED)
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_op_gives_bitwise_the_same_results_twice(backend, op, channels_last):
    require(backend)
    if backend == "triton" and not HAS_GPU and channels_last:
        pytest.skip("the Triton interpreter runs one layout here (each run takes seconds)")
    shape = (3, 32, 36, 20) if HAS_GPU else (2, 8, 12, 16)
    for s in (2, 4) if op in ("degrade", "reconstruct") else (None,):
        case = make_case(op, shape, s) if s else make_case(op, shape)
        first, g = _run(op, case, backend, torch.float32, channels_last)
        second, _ = _run(op, case, backend, torch.float32, channels_last, g)
        _assert_bitwise(first, second, f"{op} on {backend} (scale {s})")


@pytest.mark.parametrize("op", ["bias_lrelu", "channel_attention"])
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_cpu_pass_sums_do_not_depend_on_the_thread_count(op, channels_last):
    require("cpu")
    case = make_case(op, (3, 16, 40, 36))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one, g = _run(op, case, "cpu", torch.float32, channels_last)
        torch.set_num_threads(max(2, threads))
        many, _ = _run(op, case, "cpu", torch.float32, channels_last, g)
    finally:
        torch.set_num_threads(threads)
    _assert_bitwise(one, many, f"{op}: 1 thread vs {max(2, threads)}")


def _training_grads(backend, device, channels_last):
    torch.manual_seed(0)
    model = mdrn("mdrn-tiny", backend=backend).to(device).train()
    model.channels_last = channels_last
    y = torch.rand(2, 1, 24, 20, generator=torch.Generator().manual_seed(2)).to(device)
    (model(y) - y).abs().mean().backward()
    return [p.grad for p in model.parameters()]


@pytest.mark.parametrize("backend", [b for b in FUSED if b != "triton"] + (["triton"] if HAS_GPU else []))
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_training_step_gives_bitwise_the_same_gradients_twice(backend, channels_last):
    require(backend)
    device = device_for(backend)
    _assert_bitwise(_training_grads(backend, device, channels_last), _training_grads(backend, device, channels_last),
                    f"mdrn-tiny weight gradients on {backend}")
