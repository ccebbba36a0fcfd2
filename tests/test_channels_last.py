"""The C++ ops keep channels_last: channels-last maps in give channels-last maps out and channels-last map
gradients, computed on the same memory (csrc/*.cpp, the keeps_channels_last rule), equal to the float64
reference; anything else keeps the NCHW path. On the CPU here, on CUDA where built. The fakes follow the same
rule (opcheck compares their strides with the kernels')."""
import pytest
import torch

from helpers import HAS_GPU, TOLERANCES, assert_close, check_low_precision, device_for, require
from mdrn_fast import ops
from mdrn_fast.ops._common import keeps_channels_last
from mdrn_fast.ops.fuse import uses_channels_last
from op_cases import leaves, make_case, prepare, schema_args

CL = torch.channels_last
BACKENDS = ["cpu", "cuda"]
# the map arguments of each op (weights stay as the model holds them: contiguous)
MAPS = {"bias_lrelu": ("t",), "degrade": ("x",), "reconstruct": ("h",), "channel_attention": ("x", "f"),
        "fuse": ("parts",)}
# odd sizes: a remainder row and column under each scale (7 x 9), one sample, a 1 x 2 degraded map (7 x 9, s = 4)
SHAPES = [(2, 8, 12, 16), (3, 5, 7, 9), (1, 32, 16, 12)]
CASES = [(op, s) for op in MAPS for s in ((2, 4) if op in ("degrade", "reconstruct") else (None,))]
CASE_IDS = [f"{op}-s{s}" if s else op for op, s in CASES]


def _layout(t, lay):
    return (t.detach().contiguous(memory_format=CL) if lay == "cl" else t.detach().contiguous()).requires_grad_()


def _case(op, shape, scale, dtype, device, layout="cl"):
    """The op's inputs on the device with its maps in ``layout`` ("cl", "nchw", or a list per fuse part), and the
    float64 reference inputs."""
    case = make_case(op, shape, scale) if scale else make_case(op, shape)
    args = prepare(case, dtype, device)
    for name in MAPS[op]:
        v = args[name]
        if isinstance(v, list):
            lays = layout if isinstance(layout, list) else [layout] * len(v)
            args[name] = [_layout(p, lay) for p, lay in zip(v, lays)]
        else:
            args[name] = _layout(v, layout)
    return args, prepare(case, torch.float64, "cpu")


def _map_leaves(op, args):
    v = [args[name] for name in MAPS[op]]
    return v[0] if op == "fuse" else v


def _forward_backward(op, args, ref, backend):
    out = getattr(ops, op)(**args, backend=backend)
    expected = getattr(ops, op)(**ref, backend="torch")
    g = torch.randn(out.shape, dtype=torch.float64)
    out.backward(g.to(out))
    expected.backward(g)
    return out, expected


def _check_values(args, ref, out, expected, op, dtype=torch.float32):
    atol, rtol = TOLERANCES[dtype]
    assert_close(out, expected, atol, rtol, f"{op} out")
    for (name, got), (_, want) in zip(leaves(args), leaves(ref)):
        scale = max(1.0, want.grad.abs().max().item())  # weight and bias gradients sum over every pixel
        assert_close(got.grad, want.grad, atol * 10 * scale, rtol * 10, f"{op} grad {name}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("op,scale", CASES, ids=CASE_IDS)
def test_channels_last_maps_stay_channels_last_and_match(backend, op, scale, shape):
    require(backend)
    args, ref = _case(op, shape, scale, torch.float32, device_for(backend))
    out, expected = _forward_backward(op, args, ref, backend)
    assert out.is_contiguous(memory_format=CL) and not out.is_contiguous(), f"{op}: out strides {out.stride()}"
    for m in _map_leaves(op, args):
        assert m.grad.is_contiguous(memory_format=CL), f"{op}: grad strides {m.grad.stride()}"
    _check_values(args, ref, out, expected, op)


@pytest.mark.skipif(not HAS_GPU, reason="float16 and bfloat16 kernels are CUDA ones; float64 runs on the CPU above")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64], ids=str)
@pytest.mark.parametrize("shape", SHAPES[:2], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("op,scale", CASES, ids=CASE_IDS)
def test_channels_last_on_cuda_in_each_dtype(op, scale, shape, dtype):
    """Against float64, within twice the reference's own error in that dtype (float64: tightly)."""
    require("cuda")
    args, ref = _case(op, shape, scale, dtype, "cuda")
    if dtype == torch.float64:
        out, expected = _forward_backward(op, args, ref, "cuda")
        assert out.is_contiguous(memory_format=CL)
        return _check_values(args, ref, out, expected, op, dtype)
    low, _ = _case(op, shape, scale, dtype, "cuda", layout="nchw")  # the reference's own rounding in this dtype
    out = getattr(ops, op)(**args, backend="cuda")
    assert out.dtype == dtype and out.is_contiguous(memory_format=CL)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    results = [out, getattr(ops, op)(**low, backend="torch"), getattr(ops, op)(**ref, backend="torch")]
    for r in results:
        r.backward(g.to(r))
    check_low_precision(f"{op} out", *results)
    for (_, got), (_, rl), (_, e) in zip(leaves(args), leaves(low), leaves(ref)):
        check_low_precision(f"{op} grad", got.grad, rl.grad, e.grad)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op,scale", CASES, ids=CASE_IDS)
def test_nchw_maps_keep_the_nchw_path(backend, op, scale):
    require(backend)
    args, ref = _case(op, (2, 8, 12, 16), scale, torch.float32, device_for(backend), layout="nchw")
    assert not any(keeps_channels_last(m) for m in _map_leaves(op, args))
    out, expected = _forward_backward(op, args, ref, backend)
    assert out.is_contiguous()
    _check_values(args, ref, out, expected, op)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layouts", [["cl", "nchw", "cl"], ["nchw", "cl", "cl"]])
def test_fuse_with_any_nchw_part_keeps_the_nchw_path(backend, layouts):
    require(backend)
    args, ref = _case("fuse", (2, 8, 12, 16), None, torch.float32, device_for(backend), layout=layouts)
    assert not uses_channels_last(args["parts"])
    out, expected = _forward_backward("fuse", args, ref, backend)
    assert out.is_contiguous()
    _check_values(args, ref, out, expected, "fuse")


def test_attention_with_an_nchw_f_keeps_the_nchw_path():
    require("cpu")
    args, ref = _case("channel_attention", (2, 8, 12, 16), None, torch.float32, "cpu")
    args["f"] = _layout(args["f"], "nchw")
    out, expected = _forward_backward("channel_attention", args, ref, "cpu")
    assert out.is_contiguous()
    _check_values(args, ref, out, expected, "channel_attention")


def test_a_channels_last_gradient_into_an_nchw_output_and_back():
    """bias_lrelu's backward follows the saved output's layout, whatever layout the incoming gradient has."""
    require("cpu")
    for lay, other in (("cl", "nchw"), ("nchw", "cl")):
        args, ref = _case("bias_lrelu", (2, 8, 12, 16), None, torch.float32, "cpu", layout=lay)
        out = ops.bias_lrelu(**args, backend="cpu")
        expected = ops.bias_lrelu(**ref, backend="torch")
        g = torch.randn(out.shape, dtype=torch.float64)
        out.backward(_layout(g.float(), other))
        expected.backward(g)
        _check_values(args, ref, out, expected, "bias_lrelu")


@pytest.mark.parametrize("op,scale", CASES, ids=CASE_IDS)
def test_channels_last_gradcheck_float64(op, scale):
    require("cpu")
    args, _ = _case(op, (2, 4, 5, 9), scale, torch.float64, "cpu")
    names = [k for k, v in args.items() if isinstance(v, (torch.Tensor, list))]
    flat = [t for k in names for t in (args[k] if isinstance(args[k], list) else [args[k]])]
    counts = [len(args[k]) if isinstance(args[k], list) else 1 for k in names]

    def f(*tensors):
        it, kwargs = iter(tensors), dict(args)
        for k, n in zip(names, counts):
            kwargs[k] = [next(it) for _ in range(n)] if isinstance(args[k], list) else next(it)
        return getattr(ops, op)(**kwargs, backend="cpu")

    assert torch.autograd.gradcheck(f, tuple(flat))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op,scale", CASES, ids=CASE_IDS)
def test_channels_last_fake_matches_the_kernel(backend, op, scale):
    """opcheck on channels-last maps: the fake's strides (what torch.compile traces) are the kernel's."""
    require(backend)
    args, _ = _case(op, (2, 8, 12, 16), scale, torch.float32, device_for(backend))
    torch.library.opcheck(getattr(torch.ops.mdrn_fast, op).default, schema_args(op, args))
