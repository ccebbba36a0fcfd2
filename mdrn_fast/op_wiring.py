"""What the two fused backends share around their kernels: fake implementations and autograd formulas.

The Triton ops (``mdrn_fast_triton::*``, kernels/) and the C++ ops (``mdrn_fast::*``, csrc/) have the same
schemas, so one fake per op (output shapes, dtypes and strides: what torch.compile traces and opcheck
checks) and one backward formula, calling the namespace's own ``<op>_backward``, serve both. A backend
defines its ops and then calls ``wire(namespace, op, ...)``.
"""
from __future__ import annotations

import torch


def opmath(dtype: torch.dtype) -> torch.dtype:
    """The accumulation dtype of the kernels: float64 for float64, float32 otherwise."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _dense(t):
    return torch.empty_like(t, memory_format=torch.contiguous_format)


def _weight_and_bias_grads(weight):
    return torch.empty_like(weight), weight.new_empty(weight.shape[0])


FAKES = {
    "bias_lrelu": lambda t, bias, slope: _dense(t),
    "bias_lrelu_backward": lambda grad, out, slope: (_dense(grad), grad.new_empty(grad.shape[1])),
    "degrade": lambda x, weight, bias, scale, slope: x.new_empty(x.shape[0], weight.shape[0], x.shape[2] // scale,
                                                                 x.shape[3] // scale),
    "degrade_backward": lambda grad, out, x, weight, scale, slope: (_dense(x), *_weight_and_bias_grads(weight)),
    "reconstruct": lambda h, weight, bias, scale: h.new_empty(h.shape[0], weight.shape[0] // (scale * scale),
                                                              h.shape[2] * scale, h.shape[3] * scale),
    "reconstruct_backward": lambda grad, h, weight, scale: (_dense(h), *_weight_and_bias_grads(weight)),
    "fuse": lambda parts, weight, bias: parts[0].new_empty(parts[0].shape[0], weight.shape[0], *parts[0].shape[2:]),
    "fuse_backward": lambda grad, parts, weight: ([_dense(p) for p in parts], *_weight_and_bias_grads(weight)),
    "channel_attention": lambda x, f, w1, b1, w2, b2: (  # (out, the pooled means it saves for the backward)
        _dense(x), x.new_empty(x.shape[0], x.shape[1], dtype=opmath(x.dtype))),
    "channel_attention_backward": lambda grad, f, pooled, w1, b1, w2, b2: (
        _dense(f), *(torch.empty_like(t) for t in (w1, b1, w2, b2))),
    "add_noise": lambda x, std, seed, clip: _dense(x),
    "lp_distance": lambda fs, ft, square: fs.new_empty(()),
    "lp_distance_backward": lambda grad, fs, ft, square: _dense(fs),
    "channel_energy": lambda f: f.new_empty((f.shape[0], f.shape[2] * f.shape[3]), dtype=opmath(f.dtype)),
    "channel_energy_backward": lambda grad, f: _dense(f),
    "fakd": lambda fs, ft: fs.new_empty(()),
    "fakd_backward": lambda grad, fs, ft: (_dense(fs), _dense(ft)),
}


# For each op, given the namespace's ops: (setup_context, backward). Only what the backward needs is saved.
def _bias_lrelu(ops):
    def setup(ctx, inputs, output):
        ctx.save_for_backward(output)  # the mask comes from the sign of the output
        ctx.slope = inputs[2]

    def backward(ctx, grad):
        return *ops.bias_lrelu_backward(grad, *ctx.saved_tensors, ctx.slope), None

    return setup, backward


def _degrade(ops):
    def setup(ctx, inputs, output):
        x, weight, _, scale, slope = inputs
        ctx.save_for_backward(output, x, weight)  # the patches of x are recomputed, not saved
        ctx.scale, ctx.slope = scale, slope

    def backward(ctx, grad):
        return *ops.degrade_backward(grad, *ctx.saved_tensors, ctx.scale, ctx.slope), None, None

    return setup, backward


def _reconstruct(ops):
    def setup(ctx, inputs, output):
        h, weight, _, scale = inputs
        ctx.save_for_backward(h, weight)
        ctx.scale = scale

    def backward(ctx, grad):
        return *ops.reconstruct_backward(grad, *ctx.saved_tensors, ctx.scale), None

    return setup, backward


def _fuse(ops):
    def setup(ctx, inputs, output):
        parts, weight, _ = inputs
        ctx.save_for_backward(weight, *parts)

    def backward(ctx, grad):
        weight, *parts = ctx.saved_tensors
        grad_parts, grad_w, grad_b = ops.fuse_backward(grad, parts, weight)
        return list(grad_parts), grad_w, grad_b

    return setup, backward


def _channel_attention(ops):
    def setup(ctx, inputs, output):
        _, f, w1, b1, w2, b2 = inputs
        ctx.save_for_backward(f, output[1], w1, b1, w2, b2)  # output[1]: the pooled means

    def backward(ctx, grad, _grad_pooled):
        return grad, *ops.channel_attention_backward(grad, *ctx.saved_tensors)  # d out / d x = 1: no copy

    return setup, backward


def _lp_distance(ops):
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
    "bias_lrelu": _bias_lrelu,
    "degrade": _degrade,
    "reconstruct": _reconstruct,
    "fuse": _fuse,
    "channel_attention": _channel_attention,
    "add_residual": lambda ops: (None, lambda ctx, grad: (grad, grad)),
    "add_noise": lambda ops: (None, lambda ctx, grad: (grad, None, None, None)),  # identity in x
    "lp_distance": _lp_distance,
    "channel_energy": _saving_inputs("channel_energy_backward"),
    "fakd": _saving_inputs("fakd_backward"),
}


def wire(namespace: str, *names: str) -> None:
    """Register the shared fakes (op and its backward) and autograd of ``names`` in ``namespace``."""
    ops = getattr(torch.ops, namespace)
    for name in names:
        for op in (name, f"{name}_backward"):
            if op in FAKES:
                torch.library.register_fake(f"{namespace}::{op}", FAKES[op])
        if name in AUTOGRAD:
            setup, backward = AUTOGRAD[name](ops)
            torch.library.register_autograd(f"{namespace}::{name}", backward, setup_context=setup)
