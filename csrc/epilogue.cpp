// Epilogues: bias + LeakyReLU, residual add.
//   forward:  out = lrelu(t + b[c])
//   backward: g_t = grad * (out > 0 ? 1 : slope)   (sign of out == sign of t + b for slope >= 0)
//             g_b[c] = sum_{n,h,w} g_t             (reduced in the same pass)
// Layout (keeps_channels_last, csrc/common.h): a channels-last t is read in place and gives a channels-last out, its
// bias indexed per pixel row; the backward follows the saved output's layout. Anything else runs in NCHW.
// This file: the ops (checks, device-generic steps) and their schemas.
// Their passes: csrc/cpu/epilogue.cpp, csrc/cuda/epilogue.cu.
#include "common.h"
#include "passes/epilogue.h"

namespace mdrn_fast {

static void check_bias_lrelu(const at::Tensor& t, const at::Tensor& bias, double slope) {
  MDRN_CHECK_FLOAT("t", t);
  MDRN_CHECK_DIM("t", t, 4);
  MDRN_CHECK_DIM("bias", bias, 1);
  MDRN_CHECK_SAME("t", t, "bias", bias);
  TORCH_CHECK(bias.size(0) == t.size(1), "bias: expected ", t.size(1), " channels, got ", bias.size(0));
  TORCH_CHECK(slope >= 0, "slope: expected >= 0, got ", slope);
}

at::Tensor bias_lrelu(const at::Tensor& t, const at::Tensor& bias, double slope) {
  check_bias_lrelu(t, bias, slope);
  const bool channels_last = keeps_channels_last(t);
  return MDRN_PASS(bias_lrelu, t, channels_last ? t : t.contiguous(), bias.contiguous(), slope, channels_last);
}

std::tuple<at::Tensor, at::Tensor> bias_lrelu_backward(const at::Tensor& grad, const at::Tensor& out, double slope) {
  MDRN_CHECK_FLOAT("grad", grad);
  MDRN_CHECK_DIM("grad", grad, 4);
  MDRN_CHECK_SAME("out", out, "grad", grad);
  TORCH_CHECK(grad.sizes() == out.sizes(), "grad: expected shape ", out.sizes(), ", got ", grad.sizes());
  const bool channels_last = keeps_channels_last(out);
  const auto layout = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  return MDRN_PASS(bias_lrelu_backward, grad, grad.contiguous(layout), out.contiguous(layout), slope,
                   channels_last);
}

// A lone add is already one pass (fusing it means folding it into a neighbour), so the op is composite: at::add
// on every device, whose own autograd and tracing apply (no Python autograd wrapper to pay for on each call).
at::Tensor add_residual(const at::Tensor& t, const at::Tensor& r) {
  MDRN_CHECK_FLOAT("t", t);
  MDRN_CHECK_SAME("t", t, "r", r);
  TORCH_CHECK(t.sizes() == r.sizes(), "r: expected shape ", t.sizes(), ", got ", r.sizes());
  return at::add(t, r);
}

TORCH_LIBRARY_FRAGMENT(mdrn_fast, m) {
  m.def("bias_lrelu(Tensor t, Tensor bias, float slope) -> Tensor");
  m.def("bias_lrelu_backward(Tensor grad, Tensor out, float slope) -> (Tensor, Tensor)");
  m.def("add_residual(Tensor t, Tensor r) -> Tensor");
}

MDRN_IMPL(m.impl("bias_lrelu", &bias_lrelu); m.impl("bias_lrelu_backward", &bias_lrelu_backward);)

TORCH_LIBRARY_IMPL(mdrn_fast, CompositeImplicitAutograd, m) { m.impl("add_residual", &add_residual); }

}  // namespace mdrn_fast
