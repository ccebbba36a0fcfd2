"""The C++ backends' model runs channels_last from the input on (MDRN.channels_last; "auto" turns it on for the
`cuda` backend): every block map stays channels-last through forward and backward, so no op and no layer between
them copies a map into another layout, and the results equal the NCHW run's. Checked here through the `cpu`
backend, whose ops are the same code (csrc/*.cpp on ATen) as on CUDA, with channels_last turned on for it."""
import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from helpers import assert_close, require
from mdrn_fast import mdrn

N = 5  # no weight has 5 as its first dimension: a 4-D copy with it is a copy of a map
COPIES = {"aten::clone", "aten::copy_", "aten::_to_copy"}


def _step(model, x):
    model.zero_grad(set_to_none=True)
    out = model(x)
    out.square().mean().backward()
    return out.detach(), {k: p.grad.clone() for k, p in model.named_parameters()}


def _map_copies(model, x):
    """The 4-D copies of a map (batch N, more than one channel) anywhere in one forward and backward, nested
    calls inside the C++ ops included."""
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        _step(model, x)
    return [(e.name, e.input_shapes[0]) for e in prof.events() if e.name in COPIES and e.input_shapes
            and len(e.input_shapes[0]) == 4 and e.input_shapes[0][0] == N and e.input_shapes[0][1] > 1
            and not (e.cpu_parent is not None and e.cpu_parent.name in COPIES)]  # a clone's own copy_: once


@pytest.mark.parametrize("in_channels", [1, 3])
def test_channels_last_model_copies_no_map_and_matches_nchw(in_channels):
    require("cpu")
    torch.manual_seed(0)
    model = mdrn("mdrn-tiny", in_channels=in_channels, backend="cpu").train()
    x = torch.rand(N, in_channels, 20, 28)
    assert not model._runs_channels_last(x), "auto: NCHW on the cpu backend"
    out_nchw, grads_nchw = _step(model, x)
    copies_nchw = _map_copies(model, x)
    model.channels_last = True
    out_cl, grads_cl = _step(model, x)
    copies_cl = _map_copies(model, x)
    assert out_cl.is_contiguous(), "the output keeps the input's layout"
    assert_close(out_cl, out_nchw, 1e-5, 1e-4, "out")
    for k, g in grads_nchw.items():
        assert_close(grads_cl[k], g, 1e-5 * max(1.0, g.abs().max().item()), 1e-3, f"grad {k}")
    # a color image's layout changes at the input and the output (maps of 3 channels); from a gray one the head's
    # output is made channels-last once (the convolution chooses NCHW there) and its gradient goes back through
    # that copy; no block map is ever copied
    wide = lambda copies: [c for c in copies if c[1][1] > in_channels]  # noqa: E731
    assert len(wide(copies_cl)) <= (2 if in_channels == 1 else 0), f"channels-last run copies maps: {copies_cl}"
    assert not wide(copies_nchw), f"NCHW run copies maps: {copies_nchw}"
