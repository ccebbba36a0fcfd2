// Epilogues: bias + LeakyReLU, residual add. Schemas, the device-generic ops, and the CPU passes.
//   forward:  out = lrelu(t + b[c])
//   backward: g_t = grad * (out > 0 ? 1 : slope)   (sign of out == sign of t + b for slope >= 0)
//             g_b[c] = sum_{n,h,w} g_t             (reduced in the same pass)
#include <ATen/Parallel.h>

#include "common.h"
#include "passes.h"

namespace mdrn_fast {
namespace cpu {

// One (n, c) plane: dst = lrelu(src + b), branch-free so that it vectorizes: for 0 <= s <= 1, lrelu(v) =
// max(v, s v), for s > 1 min(v, s v).
template <typename scalar_t, typename acc_t = at::opmath_type<scalar_t>>
MDRN_SIMD void bias_lrelu_plane(const scalar_t* __restrict__ src, scalar_t* __restrict__ dst, int64_t n, acc_t b,
                                acc_t s) {
  if (s <= 1) {
    for (int64_t i = 0; i < n; ++i) {
      const acc_t v = static_cast<acc_t>(src[i]) + b;
      dst[i] = static_cast<scalar_t>(std::max(v, v * s));
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const acc_t v = static_cast<acc_t>(src[i]) + b;
      dst[i] = static_cast<scalar_t>(std::min(v, v * s));
    }
  }
}

// One plane of the backward: g_out = g * (out > 0 ? 1 : s) (the mask as a 0/1 factor), returning its sum,
// accumulated in independent lanes so that the loop vectorizes (a single running sum would not: float addition
// is not reassociated) and in a fixed order.
template <typename scalar_t, typename acc_t = at::opmath_type<scalar_t>>
MDRN_SIMD acc_t bias_lrelu_backward_plane(const scalar_t* __restrict__ g_in, const scalar_t* __restrict__ o_in,
                                          scalar_t* __restrict__ g_out, int64_t n, acc_t s) {
  constexpr int kLanes = 16;
  acc_t lane[kLanes] = {};
  auto step = [&](int64_t i) {
    const acc_t positive = static_cast<acc_t>(static_cast<acc_t>(o_in[i]) > 0);
    const acc_t g = static_cast<acc_t>(g_in[i]) * (s + (1 - s) * positive);
    g_out[i] = static_cast<scalar_t>(g);
    return g;
  };
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int k = 0; k < kLanes; ++k) lane[k] += step(i + k);
  acc_t acc = 0;
  for (; i < n; ++i) acc += step(i);
  for (int k = 0; k < kLanes; ++k) acc += lane[k];
  return acc;
}

at::Tensor bias_lrelu(const at::Tensor& t, const at::Tensor& bias, double slope) {
  at::Tensor out = at::empty_like(t);
  const int64_t C = t.size(1), HW = t.numel() / std::max<int64_t>(1, t.size(0) * C), planes = t.size(0) * C;
  MDRN_DISPATCH(t.scalar_type(), "bias_lrelu_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* tp = t.const_data_ptr<scalar_t>();
    const scalar_t* bp = bias.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, planes, 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p)
        bias_lrelu_plane<scalar_t>(tp + p * HW, op + p * HW, HW, static_cast<acc_t>(bp[p % C]),
                                   static_cast<acc_t>(slope));
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> bias_lrelu_backward(const at::Tensor& grad, const at::Tensor& out,
                                                       double slope) {
  at::Tensor grad_t = at::empty_like(grad);
  const int64_t N = grad.size(0), C = grad.size(1), HW = grad.numel() / std::max<int64_t>(1, N * C);
  at::Tensor grad_b = at::empty({C}, grad.options());
  MDRN_DISPATCH(grad.scalar_type(), "bias_lrelu_backward_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* gp = grad.const_data_ptr<scalar_t>();
    const scalar_t* op = out.const_data_ptr<scalar_t>();
    scalar_t* gtp = grad_t.mutable_data_ptr<scalar_t>();
    // one partial sum per (n, c) plane, reduced over n below: deterministic, no atomics
    std::vector<acc_t> partial(N * C);
    at::parallel_for(0, N * C, 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p)
        partial[p] = bias_lrelu_backward_plane<scalar_t>(gp + p * HW, op + p * HW, gtp + p * HW, HW,
                                                         static_cast<acc_t>(slope));
    });
    scalar_t* gbp = grad_b.mutable_data_ptr<scalar_t>();
    for (int64_t c = 0; c < C; ++c) {
      acc_t acc = 0;
      for (int64_t n = 0; n < N; ++n) acc += partial[n * C + c];
      gbp[c] = static_cast<scalar_t>(acc);
    }
  });
  return {grad_t, grad_b};
}

}  // namespace cpu

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
  return MDRN_PASS(bias_lrelu, t, t.contiguous(), bias.contiguous(), slope);
}

std::tuple<at::Tensor, at::Tensor> bias_lrelu_backward(const at::Tensor& grad, const at::Tensor& out, double slope) {
  MDRN_CHECK_FLOAT("grad", grad);
  MDRN_CHECK_DIM("grad", grad, 4);
  MDRN_CHECK_SAME("out", out, "grad", grad);
  TORCH_CHECK(grad.sizes() == out.sizes(), "grad: expected shape ", out.sizes(), ", got ", grad.sizes());
  return MDRN_PASS(bias_lrelu_backward, grad, grad.contiguous(), out.contiguous(), slope);
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
