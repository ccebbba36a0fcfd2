"""The conv family beyond the shared parity tests: conv3x3 in each of its forms (bias + LeakyReLU, + residual, plain)
at odd sizes from 1 to 67 pixels, float64 gradcheck, layouts, and the generic Triton convolution the GPU plan
also runs DEGRADE through (kernel s, stride s)."""
import pytest
import torch
import torch.nn.functional as F

from helpers import FUSED, TOLERANCES, assert_close, device_for, require
from mdrn_fast import ops, reference

CL = torch.channels_last
# (N, C_in, C_out, H, W): sides 1 to 67, none a multiple of the Triton tiles; channels below, at and above the
# kernels' channel block (16 / 64)
SHAPES = [(1, 16, 16, 1, 1), (2, 3, 16, 1, 67), (1, 32, 32, 67, 5), (1, 1, 32, 33, 17), (3, 24, 8, 7, 45),
          (1, 80, 3, 9, 10)]
FORMS = {"lrelu": dict(slope=0.2), "residual": dict(residual=True), "plain": {}}


def case(shape, form, dtype=torch.float32, device="cpu"):
    n, cin, cout, h, w = shape
    g = torch.Generator().manual_seed(sum(shape))
    k = (9 * cin) ** -0.5
    kw = dict(x=torch.randn(n, cin, h, w, generator=g), weight=torch.randn(cout, cin, 3, 3, generator=g) * k,
              bias=torch.randn(cout, generator=g) * k, slope=FORMS[form].get("slope"))
    if "residual" in FORMS[form]:
        kw["residual"] = torch.randn(n, cout, h, w, generator=g)
    return {k_: v.to(device, dtype).requires_grad_() if isinstance(v, torch.Tensor) else v for k_, v in kw.items()}


def grads(out, kw, g):
    out.backward(g)
    return {k: v.grad for k, v in kw.items() if isinstance(v, torch.Tensor)}


@pytest.mark.parametrize("backend", FUSED)
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("shape", SHAPES, ids=["x".join(map(str, s)) for s in SHAPES])
def test_conv3x3_matches_reference(backend, form, shape):
    require(backend)
    dev = device_for(backend)
    kw = case(shape, form, device=dev)
    out = ops.conv3x3(**kw, backend=backend)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(1)).to(dev)
    got = grads(out, kw, g)
    ref_kw = case(shape, form, torch.float64)
    ref = ops.conv3x3(**ref_kw, backend="torch")
    want = grads(ref, ref_kw, g.double().cpu())
    atol, rtol = TOLERANCES[torch.float32]
    assert_close(out, ref, atol, rtol, f"{form} out")
    pixels = shape[0] * shape[3] * shape[4]
    for name, e in want.items():
        # weight and bias gradients sum over every pixel: float32 summation error grows with their number
        bound = atol * max(1.0, pixels ** 0.5) * (1 + e.abs().max().item()) if name in ("weight", "bias") else atol
        assert_close(got[name], e, bound, rtol * 10, f"{form} grad {name}")


@pytest.mark.parametrize("form", FORMS)
def test_triton_conv3x3_gradcheck_float64(form):
    require("triton")
    kw = case((2, 3, 4, 5, 6), form, torch.float64, device_for("triton"))
    names = [k for k, v in kw.items() if isinstance(v, torch.Tensor)]

    def f(*tensors):
        return ops.conv3x3(**dict(kw, **dict(zip(names, tensors))), backend="triton")

    assert torch.autograd.gradcheck(f, [kw[k] for k in names], eps=1e-6, atol=1e-8, fast_mode=True)


def test_triton_conv3x3_layouts_and_low_precision():
    """Any input strides give the same result; the output is channels-last; float16 within its own rounding."""
    require("triton")
    dev = device_for("triton")
    kw = {k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in case((2, 16, 24, 13, 11), "lrelu").items()}
    kw = {k: v.to(dev) if isinstance(v, torch.Tensor) else v for k, v in kw.items()}
    ref = ops.conv3x3(**kw, backend="torch")
    wide = torch.randn(2, 16, 13, 22, device=dev)[..., ::2]  # a strided view
    wide.copy_(kw["x"])
    for x in (kw["x"], kw["x"].contiguous(memory_format=CL), wide):
        out = ops.conv3x3(**dict(kw, x=x), backend="triton")
        assert out.is_contiguous(memory_format=CL)
        assert_close(out, ref, 1e-5, 1e-4, f"input strides {x.stride()}")
    half = {k: v.half() if isinstance(v, torch.Tensor) else v for k, v in kw.items()}
    low, low_ref = ops.conv3x3(**half, backend="triton"), ops.conv3x3(**half, backend="torch").float()
    ref_err = (low_ref.cpu() - ref.cpu()).abs().max().item()
    assert (low.float().cpu() - ref.cpu()).abs().max().item() <= 2 * ref_err + 1e-3


@pytest.mark.parametrize("scale,shape", [(2, (1, 16, 14, 10)), (4, (2, 32, 12, 20)), (4, (1, 8, 13, 7))])
def test_triton_strided_conv_is_degrade(scale, shape):
    """The generic kernel with kernel s, stride s, no padding (how the GPU plan runs DEGRADE), writing into a
    given output, and with its residual read from that same output (in place)."""
    require("triton")
    from mdrn_fast.kernels import conv

    dev = device_for("triton")
    n, c, h, w = shape
    x = torch.randn(shape, device=dev)
    wt, b = torch.randn(c, c, scale, scale, device=dev) / (c * scale * scale) ** 0.5, torch.randn(c, device=dev)
    want = reference.degrade(x, wt, b, scale, 0.2)
    out = torch.empty_like(want, memory_format=CL)
    got = conv.conv(x, conv.pack(wt), scale, scale, 0, bias=b, slope=0.2, out=out)
    assert got is out
    assert_close(got, want, 1e-5, 1e-4, "degrade")
    again = conv.conv(x, conv.pack(wt), scale, scale, 0, bias=b, residual=out, out=out)
    assert_close(again, want + F.conv2d(x, wt, b, stride=scale), 1e-5, 1e-4, "in place residual")


def test_conv3x3_refuses_what_does_not_fit():
    x, w, b = torch.randn(1, 4, 5, 5), torch.randn(8, 4, 3, 3), torch.randn(8)
    with pytest.raises(ValueError, match="one or the other"):
        ops.conv3x3(x, w, b, 0.2, torch.randn(1, 8, 5, 5), backend="torch")
    with pytest.raises(ValueError, match="weight: expected shape"):
        ops.conv3x3(x, torch.randn(8, 4, 5, 5), b, backend="torch")
    with pytest.raises(ValueError, match="residual: expected shape"):
        ops.conv3x3(x, w, b, residual=torch.randn(1, 8, 4, 5), backend="torch")
    with pytest.raises(ValueError, match="slope"):
        ops.conv3x3(x, w, b, slope=-1.0, backend="torch")
