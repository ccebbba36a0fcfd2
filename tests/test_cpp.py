"""C++ extension specifics: float64 gradcheck on CPU, the CPU and CUDA noise streams agreeing, and TORCH_CHECK
errors reaching the user (opcheck of its ops: test_opcheck.py)."""
import math

import pytest
import torch

from helpers import require
from mdrn_fast import ops
from op_cases import OPS, leaves, make_case, prepare

pytestmark = pytest.mark.usefixtures("_cpu_backend")


@pytest.fixture
def _cpu_backend():
    require("cpu")


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("scale", [2, 4])
def test_gradcheck_float64(op, scale):
    if scale == 4 and op not in ("degrade", "reconstruct"):
        pytest.skip("scale only matters for degrade and reconstruct")
    case = make_case(op, (2, 3, 8, 12), scale) if op in ("degrade", "reconstruct") else make_case(op, (2, 3, 4, 8))
    args = prepare(case, torch.float64, "cpu")
    names = [n for n, _ in leaves(args)]

    def fn(*tensors):
        kw = dict(args)
        it = iter(tensors)
        for k, v in kw.items():
            if isinstance(v, list):
                kw[k] = [next(it) for _ in v]
            elif isinstance(v, torch.Tensor):
                kw[k] = next(it)
        return getattr(ops, op)(**kw, backend="cpu")

    assert torch.autograd.gradcheck(fn, tuple(t for _, t in leaves(args))), names


@pytest.mark.parametrize("op, shape, scale", [
    ("degrade", (2, 3, 251, 203), 2), ("degrade", (1, 2, 250, 206), 4),
    ("reconstruct", (2, 2, 400, 202), 2), ("reconstruct", (1, 1, 400, 204), 4), ("fuse", (1, 3, 130, 121), 2)])
def test_cpu_tiles_match_reference(op, shape, scale):
    """The CPU kernels run tile by tile; these sizes span several tiles with a ragged last one (the shared
    op cases fit in one tile). float64, so that any misplaced element shows far above rounding."""
    args = prepare(make_case(op, shape, scale), torch.float64, "cpu")
    out = {be: getattr(ops, op)(**args, backend=be) for be in ("cpu", "torch")}
    torch.testing.assert_close(out["cpu"], out["torch"], atol=1e-12, rtol=1e-12)
    g = torch.randn_like(out["torch"])
    tensors = [t for _, t in leaves(args)]
    for a, b in zip(torch.autograd.grad(out["cpu"], tensors, g), torch.autograd.grad(out["torch"], tensors, g)):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("scale", [2, 4])
def test_degrade_ragged_edges(scale):
    """H, W not multiples of the scale: the rows and columns no patch covers get a zero gradient."""
    args = prepare(make_case("degrade", (2, 3, 4 * scale + scale - 1, 3 * scale + 1), scale), torch.float64, "cpu")
    out = {be: ops.degrade(**args, backend=be) for be in ("cpu", "torch")}
    torch.testing.assert_close(out["cpu"], out["torch"], atol=1e-12, rtol=1e-12)
    g = torch.randn_like(out["torch"])
    tensors = [t for _, t in leaves(args)]
    for a, b in zip(torch.autograd.grad(out["cpu"], tensors, g), torch.autograd.grad(out["torch"], tensors, g)):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)


def philox_normals(count: int, seed: int) -> torch.Tensor:
    """The documented stream (csrc/philox.h) in float64: Philox4x32-10 of counter g under the 64-bit seed, its
    four words as two Box-Muller pairs, u = (word >> 8) + 1) / 2^24."""
    mask, out = 0xFFFFFFFF, []
    for g in range((count + 3) // 4):
        c0, c1, c2, c3, k0, k1 = g & mask, g >> 32, 0, 0, seed & mask, seed >> 32
        for _ in range(10):
            p0, p1 = 0xD2511F53 * c0, 0xCD9E8D57 * c2
            c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0) & mask, p1 & mask, ((p0 >> 32) ^ c3 ^ k1) & mask, p0 & mask
            k0, k1 = (k0 + 0x9E3779B9) & mask, (k1 + 0xBB67AE85) & mask
        for a, b in ((c0, c1), (c2, c3)):
            u1, u2 = ((a >> 8) + 1) / 2**24, ((b >> 8) + 1) / 2**24
            rad = math.sqrt(-2 * math.log(u1))
            out += [rad * math.cos(2 * math.pi * u2), rad * math.sin(2 * math.pi * u2)]
    return torch.tensor(out[:count], dtype=torch.float64)


def test_cpu_noise_is_the_documented_stream():
    """The vectorized CPU pass (polynomial log and sine/cosine) against the stream computed exactly."""
    z = ops.add_noise(torch.zeros(2, 1, 1, 1501), 255.0, seed=2**33 + 5, backend="cpu")  # std 1: z itself
    truth = philox_normals(1501, 2**33 + 5)
    torch.testing.assert_close(z[0, 0, 0].double(), truth, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(z[1, 0, 0].double(), philox_normals(3002, 2**33 + 5)[1501:], atol=1e-6, rtol=1e-6)


def test_noise_streams_match_across_devices():
    require("cuda")
    x = torch.rand(2, 3, 17, 9)
    a = ops.add_noise(x, 25.0, seed=11, backend="cpu")
    b = ops.add_noise(x.cuda(), 25.0, seed=11, backend="cuda").cpu()
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_torch_check_errors_reach_the_user():
    f = torch.ops.mdrn_fast
    with pytest.raises(RuntimeError, match=r"weight: expected shape \[4, 3, 2, 2\]"):
        f.degrade(torch.randn(1, 3, 8, 8), torch.randn(4, 3, 3, 3), torch.randn(4), 2, 0.2)
    with pytest.raises(RuntimeError, match="bias has dtype Double but x has Float"):
        f.degrade(torch.randn(1, 3, 8, 8), torch.randn(4, 3, 2, 2), torch.randn(4).double(), 2, 0.2)
    with pytest.raises(RuntimeError, match="not a multiple of scale"):
        f.reconstruct(torch.randn(1, 3, 8, 8), torch.randn(6, 3, 1, 1), torch.randn(6), 2)
    with pytest.raises(RuntimeError, match=r"parts\[1\]: shape"):
        f.fuse([torch.randn(1, 2, 4, 4), torch.randn(1, 2, 4, 5)], torch.randn(2, 4, 1, 1), torch.randn(2))
    with pytest.raises(RuntimeError, match=r"w2: expected shape \[4, 1\]"):
        f.channel_attention(*(torch.randn(1, 4, 3, 3),) * 2, torch.randn(1, 4), torch.randn(1), torch.randn(4, 2),
                            torch.randn(4))
    with pytest.raises(RuntimeError, match=r"std: expected shape \[2\]"):
        f.add_noise(torch.rand(2, 1, 4, 4), torch.rand(3), 0, False)
    with pytest.raises(RuntimeError, match="non-empty"):
        f.degrade(torch.randn(0, 3, 8, 8), torch.randn(4, 3, 2, 2), torch.randn(4), 2, 0.2)
