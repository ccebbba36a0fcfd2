// Channel attention with the local residual: out = x + f * a,  a = sigmoid(W2 relu(W1 p + c1) + c2),
// p = mean_hw(f). One reduction pass (p), the tiny [N, C] MLP through ATen, one scale-add pass.
// Backward: s = sum_hw(dout * f) (one reduction pass); da = s; dz2 = da a (1 - a); dW2 = dz2^T r;
//   dc2 = sum_n dz2; dz1 = (dz2 W2) [z1 > 0]; dW1 = dz1^T p; dc1 = sum_n dz1; dp = dz1 W1;
//   df = dout * a + dp / HW (one pass); dx = dout (no copy: returned by the Python autograd).
// The forward returns p too, so that the backward recomputes the MLP from [N, C] values only.
// This file: the ops (checks, device-generic steps) and their schemas.
// Their passes: csrc/cpu/attention.cpp, csrc/cuda/attention.cu.
#include "common.h"
#include "passes/attention.h"

namespace mdrn_fast {

static void check_attention(const at::Tensor& x, const at::Tensor& f, const at::Tensor& w1, const at::Tensor& b1,
                            const at::Tensor& w2, const at::Tensor& b2) {
  MDRN_CHECK_FLOAT("x", x);
  MDRN_CHECK_DIM("x", x, 4);
  TORCH_CHECK(x.numel() > 0, "x: expected a non-empty tensor, got shape ", x.sizes());
  MDRN_CHECK_SAME("x", x, "f", f);
  TORCH_CHECK(f.sizes() == x.sizes(), "f: expected shape ", x.sizes(), ", got ", f.sizes());
  const int64_t C = x.size(1), r = w1.size(0);
  MDRN_CHECK_SAME("x", x, "w1", w1);
  MDRN_CHECK_SAME("x", x, "b1", b1);
  MDRN_CHECK_SAME("x", x, "w2", w2);
  MDRN_CHECK_SAME("x", x, "b2", b2);
  MDRN_CHECK_SHAPE("w1", w1, r, C);
  MDRN_CHECK_SHAPE("b1", b1, r);
  MDRN_CHECK_SHAPE("w2", w2, C, r);
  MDRN_CHECK_SHAPE("b2", b2, C);
}

// the [N, C] MLP in the accumulation dtype: returns (z1, a)
static std::tuple<at::Tensor, at::Tensor> attention_mlp(const at::Tensor& pooled, const at::Tensor& w1,
                                                        const at::Tensor& b1, const at::Tensor& w2,
                                                        const at::Tensor& b2) {
  const auto acc = at::toOpMathType(w1.scalar_type());
  const at::Tensor z1 = at::addmm(b1.to(acc), pooled.to(acc), w1.to(acc).t());
  const at::Tensor a = at::sigmoid(at::addmm(b2.to(acc), at::relu(z1), w2.to(acc).t()));
  return {z1, a};
}

// Channels-last x and f (keeps_channels_last(x), f channels-last too) keep channels-last: the mean and the two
// scale-add passes are then ATen's own kernels, which read that layout in place, and the backward's sums of g * f
// a column_sums pass; anything else is made NCHW for the passes of csrc/cpu/attention.cpp, csrc/cuda/attention.cu.
static bool attention_channels_last(const at::Tensor& x, const at::Tensor& f) {
  return keeps_channels_last(x) && f.is_contiguous(at::MemoryFormat::ChannelsLast);
}

// [N, C] as [N, C, 1, 1] in t's dtype: a per-plane factor broadcast over a map
static at::Tensor per_plane(const at::Tensor& v, const at::Tensor& t) {
  return v.to(t.scalar_type()).view({v.size(0), v.size(1), 1, 1});
}

std::tuple<at::Tensor, at::Tensor> channel_attention(const at::Tensor& x_in, const at::Tensor& f_in,
                                                     const at::Tensor& w1, const at::Tensor& b1,
                                                     const at::Tensor& w2, const at::Tensor& b2) {
  check_attention(x_in, f_in, w1, b1, w2, b2);
  const bool channels_last = attention_channels_last(x_in, f_in);
  const at::Tensor x = channels_last ? x_in : x_in.contiguous(), f = channels_last ? f_in : f_in.contiguous();
  const at::Tensor pooled = at::mean(f, {2, 3}, false, at::toOpMathType(f.scalar_type()));
  const at::Tensor a = std::get<1>(attention_mlp(pooled, w1, b1, w2, b2));
  if (channels_last) {
    at::Tensor out = at::empty_like(x);
    return {at::addcmul_out(out, x, f, per_plane(a, x)), pooled};
  }
  return {MDRN_PASS(scale_add, x, x, f, a.to(x.scalar_type())), pooled};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> channel_attention_backward(
    const at::Tensor& grad_in, const at::Tensor& f_in, const at::Tensor& pooled, const at::Tensor& w1,
    const at::Tensor& b1, const at::Tensor& w2, const at::Tensor& b2) {
  check_attention(grad_in, f_in, w1, b1, w2, b2);
  const bool channels_last = attention_channels_last(f_in, grad_in);  // f's layout, when grad has it too
  const at::Tensor g = channels_last ? grad_in : grad_in.contiguous(), f = channels_last ? f_in : f_in.contiguous();
  const auto acc = at::toOpMathType(w1.scalar_type());
  const double hw = static_cast<double>(f.size(2) * f.size(3));
  auto [z1, a] = attention_mlp(pooled, w1, b1, w2, b2);
  const at::Tensor s = channels_last ? MDRN_PASS(column_sums, g, g, f) : MDRN_PASS(plane_sums, g, g, f);
  const at::Tensor dz2 = s * a * (1 - a);
  const at::Tensor r = at::relu(z1);
  const at::Tensor dz1 = at::mm(dz2, w2.to(acc)) * (z1 > 0);
  const at::Tensor dp = at::mm(dz1, w1.to(acc));
  at::Tensor grad_f;
  if (channels_last) {
    grad_f = at::empty_like(g);
    at::addcmul_out(grad_f, per_plane(dp / hw, g), g, per_plane(a, g));
  } else {
    grad_f = MDRN_PASS(scale_shift, g, g, a.contiguous(), (dp / hw).contiguous());
  }
  const auto dt = w1.scalar_type();
  return {grad_f, at::mm(dz1.t(), pooled.to(acc)).to(dt), dz1.sum(0).to(dt), at::mm(dz2.t(), r).to(dt),
          dz2.sum(0).to(dt)};
}

TORCH_LIBRARY_FRAGMENT(mdrn_fast, m) {
  m.def("channel_attention(Tensor x, Tensor f, Tensor w1, Tensor b1, Tensor w2, Tensor b2) -> (Tensor, Tensor)");
  m.def("channel_attention_backward(Tensor grad, Tensor f, Tensor pooled, Tensor w1, Tensor b1, Tensor w2, "
        "Tensor b2) -> (Tensor, Tensor, Tensor, Tensor, Tensor)");
}

MDRN_IMPL(m.impl("channel_attention", &channel_attention);
          m.impl("channel_attention_backward", &channel_attention_backward);)

}  // namespace mdrn_fast
