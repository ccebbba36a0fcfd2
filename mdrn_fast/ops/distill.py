"""The distill family: the fused parts of the feature-distillation distances (docs/DESIGN.md section 3):
LP_DISTANCE (mean |fs - ft| or its square), CHANNEL_ENERGY (the attention map's full-size pass) and FAKD
(the affinity distance without the [HW, HW] matrices). Their public entry is
``mdrn_fast.distill.feature_loss``; the references are in reference.py.

The family's contract: fakes and backward formulas (mdrn_fast.op_wiring registers them for each fused
backend). Kernels: kernels/distill.py, csrc/distill.cpp, csrc/cuda/distill.cu.
"""
from __future__ import annotations

from ._common import dense, opmath

PUBLIC = ()

FAKES = {
    "lp_distance": lambda fs, ft, square: fs.new_empty(()),
    "lp_distance_backward": lambda grad, fs, ft, square: dense(fs),
    "channel_energy": lambda f: f.new_empty((f.shape[0], f.shape[2] * f.shape[3]), dtype=opmath(f.dtype)),
    "channel_energy_backward": lambda grad, f: dense(f),
    "fakd": lambda fs, ft: fs.new_empty(()),
    "fakd_backward": lambda grad, fs, ft: (dense(fs), dense(ft)),
}


def _lp_distance_autograd(ops):
    def setup(ctx, inputs, output):
        ctx.save_for_backward(inputs[0], inputs[1])  # recomputed from, instead of storing |fs - ft| or its sign
        ctx.square = inputs[2]

    def backward(ctx, grad):
        d = ops.lp_distance_backward(grad, *ctx.saved_tensors, ctx.square)
        return (d if ctx.needs_input_grad[0] else None), (-d if ctx.needs_input_grad[1] else None), None

    return setup, backward


def _saving_inputs(backward_name):
    def make(ops):
        def setup(ctx, inputs, output):
            ctx.save_for_backward(*inputs)

        def backward(ctx, grad):
            return getattr(ops, backward_name)(grad, *ctx.saved_tensors)

        return setup, backward

    return make


AUTOGRAD = {
    "lp_distance": _lp_distance_autograd,
    "channel_energy": _saving_inputs("channel_energy_backward"),
    "fakd": _saving_inputs("fakd_backward"),
}
