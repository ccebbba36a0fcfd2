"""Every fused op on every usable backend against the reference: forward and every gradient.

float32 is compared tightly; float16/bfloat16 are judged against the reference's own rounding error in
that dtype (the reference run in low precision vs in float64), as flash-attention's tests do.
"""
import pytest
import torch

from helpers import FUSED, HAS_GPU, TOLERANCES, assert_close, check_low_precision, device_for, require
from mdrn_fast import ops
from op_cases import OPS, SHAPES, leaves, make_case, prepare

# (dtype, channels_last, shapes): float32 on every shape, the other variants on a few
VARIANTS = [(torch.float32, False, SHAPES), (torch.float32, True, SHAPES[1:3]), (torch.float16, False, SHAPES[:3:2]),
            (torch.float64, False, SHAPES[1:3])]
PARAMETERS = {"weight", "bias", "w1", "b1", "w2", "b2"}  # gradients that sum over every pixel of the batch
U32 = 2.0**-24  # float32 unit roundoff
if HAS_GPU:
    VARIANTS += [(torch.bfloat16, False, SHAPES[:3:2]), (torch.float16, True, SHAPES[-1:]),
                 (torch.bfloat16, True, SHAPES[-1:])]
PARAMS = [(dt, cl, s) for dt, cl, shapes in VARIANTS for s in shapes]


def run(op, kwargs, backend, grad_out=None):
    out = getattr(ops, op)(**kwargs, backend=backend)
    if grad_out is None:
        grad_out = torch.randn_like(out, dtype=torch.float32).to(out.dtype)
    out.backward(grad_out)
    return out, [(name, t.grad) for name, t in leaves(kwargs)], grad_out


@pytest.mark.parametrize("backend", FUSED)
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype,channels_last,shape", PARAMS,
                         ids=[f"{str(d)[6:]}-{'nhwc' if c else 'nchw'}-{'x'.join(map(str, s))}" for d, c, s in PARAMS])
def test_op_matches_reference(backend, op, dtype, channels_last, shape):
    require(backend)
    if backend == "triton" and dtype == torch.bfloat16 and not HAS_GPU:
        pytest.skip("the Triton CPU interpreter has no bfloat16")
    dev = device_for(backend)
    scales = (2, 4) if op in ("degrade", "reconstruct") else (None,)
    for s in scales:
        case = make_case(op, shape, s) if s else make_case(op, shape)
        got_args = prepare(case, dtype, dev, channels_last)
        got, got_grads, g = run(op, got_args, backend)
        assert got.dtype == dtype and got.device.type == dev
        ref64_args = prepare(case, torch.float64, "cpu")
        ref64, ref64_grads, _ = run(op, ref64_args, "torch", g.double().cpu())
        if dtype == torch.float64:
            atol, rtol = TOLERANCES[dtype]
            assert_close(got, ref64, atol, rtol, f"{op} out (scale {s})")
            for (name, a), (_, e) in zip(got_grads, ref64_grads):
                assert_close(a, e, atol * 100, rtol * 100, f"{op} grad {name} (scale {s})")
        elif dtype == torch.float32:
            atol, rtol = TOLERANCES[dtype]
            assert_close(got, ref64, atol, rtol, f"{op} out (scale {s})")
            for (name, a), (_, e) in zip(got_grads, ref64_grads):
                n_terms = g.numel() / max(1, e.numel())
                bound = atol * max(1.0, n_terms ** 0.5)
                if name in PARAMETERS:
                    # a sum over the L = N*H*W pixels whose partial sums grow to the size of the result: float32
                    # summation error is about u * sqrt(L) * |partial sums| (a single wrong term is far above)
                    pixels = g.numel() / g.shape[1]
                    bound = max(bound, 4 * U32 * pixels ** 0.5 * e.abs().max().item())
                assert_close(a, e, bound, rtol * 10, f"{op} grad {name} (scale {s})")
        else:
            ref_low_args = prepare(case, dtype, dev)
            ref_low, ref_low_grads, _ = run(op, ref_low_args, "torch", g)
            check_low_precision(f"{op} out", got, ref_low, ref64)
            for (name, a), (_, rl), (_, e) in zip(got_grads, ref_low_grads, ref64_grads):
                check_low_precision(f"{op} grad {name}", a, rl, e)


@pytest.mark.parametrize("backend", FUSED)
def test_reductions_split_over_large_planes(backend):
    """A plane larger than one reduction chunk (Triton sums 16K elements per program, then the partials) and a
    weight gradient over many (sample, column) splits: the attention pooling and the degrade weight gradient."""
    require(backend)
    dev = device_for(backend)
    for op, shape in (("channel_attention", (1, 2, 130, 160)), ("degrade", (2, 2, 130, 160))):
        case = make_case(op, shape)
        got, got_grads, g = run(op, prepare(case, torch.float32, dev), backend)
        ref, ref_grads, _ = run(op, prepare(case, torch.float64, "cpu"), "torch", g.double().cpu())
        assert_close(got, ref, 1e-5, 1e-4, f"{op} out")
        for (name, a), (_, e) in zip(got_grads, ref_grads):
            n_terms = g.numel() / max(1, e.numel())
            assert_close(a, e, 1e-5 * max(1.0, n_terms ** 0.5), 1e-3, f"{op} grad {name}")


@pytest.mark.parametrize("backend", FUSED)
def test_op_rejects_wrong_device(backend):
    """A backend given tensors on a device it cannot run says so."""
    require(backend)
    if backend == "cpu" and not HAS_GPU:
        pytest.skip("needs a GPU tensor to hand to the cpu backend")
    if backend in ("cuda", "triton") and device_for(backend) == "cuda":
        t, b = torch.randn(1, 2, 4, 4), torch.randn(2)
    else:
        pytest.skip("this backend runs on CPU tensors here")
    with pytest.raises(Exception, match="cannot run|device|CUDA|cuda"):
        ops.bias_lrelu(t, b, backend=backend)


@pytest.mark.parametrize("backend", FUSED)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_add_noise_statistics_and_seeding(backend, dtype):
    require(backend)
    dev = device_for(backend)
    x = torch.rand(2, 3, 96, 80, device=dev).to(dtype)
    y1 = ops.add_noise(x, 25.0, seed=7, backend=backend)
    y2 = ops.add_noise(x, 25.0, seed=7, backend=backend)
    y3 = ops.add_noise(x, 25.0, seed=8, backend=backend)
    assert y1.dtype == dtype and y1.shape == x.shape
    assert torch.equal(y1, y2), "same seed must give the same noise"
    assert not torch.equal(y1, y3), "another seed must give other noise"
    z = (y1.float() - x.float()) * 255 / 25
    assert abs(z.mean().item()) < 0.03 and abs(z.std().item() - 1) < 0.03, (z.mean().item(), z.std().item())
    # not clipped by default: AWGN protocol (docs/DESIGN.md section 6)
    assert (y1 < 0).any() and (y1 > 1).any()
    clipped = ops.add_noise(x, 25.0, seed=7, clip=True, backend=backend)
    assert clipped.min() >= 0 and clipped.max() <= 1
    # one sigma per sample
    ys = ops.add_noise(x, torch.tensor([0.0, 50.0], device=dev), seed=3, backend=backend)
    assert torch.equal(ys[0], x[0])
    assert abs(((ys[1].float() - x[1].float()) * 255 / 50).std().item() - 1) < 0.03
    # gradient with respect to x is the identity
    xg = x.float().requires_grad_()
    ops.add_noise(xg, 15.0, seed=1, backend=backend).sum().backward()
    assert torch.equal(xg.grad, torch.ones_like(xg))
