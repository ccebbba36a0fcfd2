// Epilogues: bias + LeakyReLU, forward and backward. Schemas and CPU kernels.
//   forward:  out = lrelu(t + b[c])
//   backward: g_t = grad * (out > 0 ? 1 : slope)   (sign of out == sign of t + b for slope > 0)
//             g_b[c] = sum_{n,h,w} g_t
#include <ATen/Parallel.h>
#include <ATen/OpMathType.h>
#include <torch/library.h>

#include "common.h"

namespace mdrn_fast {

static void check_bias_lrelu(const at::Tensor& t, const at::Tensor& bias, double slope) {
  MDRN_CHECK_FLOAT("t", t);
  MDRN_CHECK_DIM("t", t, 4);
  MDRN_CHECK_DIM("bias", bias, 1);
  MDRN_CHECK_SAME("t", t, "bias", bias);
  TORCH_CHECK(bias.size(0) == t.size(1), "bias: expected ", t.size(1), " channels, got ", bias.size(0));
  TORCH_CHECK(slope >= 0, "slope: expected >= 0, got ", slope);
}

at::Tensor bias_lrelu_cpu(const at::Tensor& t_in, const at::Tensor& bias_in, double slope) {
  check_bias_lrelu(t_in, bias_in, slope);
  TORCH_CHECK(t_in.device().is_cpu(), "t: expected a CPU tensor, got ", t_in.device());
  const at::Tensor t = t_in.contiguous();
  const at::Tensor bias = bias_in.contiguous();
  at::Tensor out = at::empty_like(t);
  const int64_t C = t.size(1), HW = t.size(2) * t.size(3), planes = t.size(0) * C;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, t.scalar_type(), "bias_lrelu_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* tp = t.data_ptr<scalar_t>();
    const scalar_t* bp = bias.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    const acc_t s = static_cast<acc_t>(slope);
    at::parallel_for(0, planes, 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const acc_t b = static_cast<acc_t>(bp[p % C]);
        const scalar_t* src = tp + p * HW;
        scalar_t* dst = op + p * HW;
        for (int64_t i = 0; i < HW; ++i) {
          const acc_t v = static_cast<acc_t>(src[i]) + b;
          dst[i] = static_cast<scalar_t>(v > 0 ? v : v * s);
        }
      }
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> bias_lrelu_backward_cpu(const at::Tensor& grad_in, const at::Tensor& out_in,
                                                           double slope) {
  MDRN_CHECK_FLOAT("grad", grad_in);
  MDRN_CHECK_DIM("grad", grad_in, 4);
  MDRN_CHECK_SAME("out", out_in, "grad", grad_in);
  TORCH_CHECK(grad_in.sizes() == out_in.sizes(), "grad: expected shape ", out_in.sizes(), ", got ", grad_in.sizes());
  TORCH_CHECK(out_in.device().is_cpu(), "out: expected a CPU tensor, got ", out_in.device());
  const at::Tensor grad = grad_in.contiguous();
  const at::Tensor out = out_in.contiguous();
  at::Tensor grad_t = at::empty_like(grad);
  const int64_t N = grad.size(0), C = grad.size(1), HW = grad.size(2) * grad.size(3);
  at::Tensor grad_b;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "bias_lrelu_backward_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* gp = grad.data_ptr<scalar_t>();
    const scalar_t* op = out.data_ptr<scalar_t>();
    scalar_t* gtp = grad_t.data_ptr<scalar_t>();
    const acc_t s = static_cast<acc_t>(slope);
    // one partial sum per (n, c) plane, reduced over n below: deterministic, no atomics
    std::vector<acc_t> partial(N * C);
    at::parallel_for(0, N * C, 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        acc_t acc = 0;
        for (int64_t i = p * HW; i < (p + 1) * HW; ++i) {
          const acc_t g = static_cast<acc_t>(gp[i]) * (static_cast<acc_t>(op[i]) > 0 ? acc_t(1) : s);
          gtp[i] = static_cast<scalar_t>(g);
          acc += g;
        }
        partial[p] = acc;
      }
    });
    grad_b = at::empty({C}, grad.options());
    scalar_t* gbp = grad_b.data_ptr<scalar_t>();
    for (int64_t c = 0; c < C; ++c) {
      acc_t acc = 0;
      for (int64_t n = 0; n < N; ++n) acc += partial[n * C + c];
      gbp[c] = static_cast<scalar_t>(acc);
    }
  });
  return {grad_t, grad_b};
}

TORCH_LIBRARY_FRAGMENT(mdrn_fast, m) {
  m.def("bias_lrelu(Tensor t, Tensor bias, float slope) -> Tensor");
  m.def("bias_lrelu_backward(Tensor grad, Tensor out, float slope) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(mdrn_fast, CPU, m) {
  m.impl("bias_lrelu", &bias_lrelu_cpu);
  m.impl("bias_lrelu_backward", &bias_lrelu_backward_cpu);
}

}  // namespace mdrn_fast
