// CONV3X3: lrelu?(conv2d(x, w, b, padding=1)) + residual?, on the vendor convolution (cuDNN on CUDA, oneDNN on
// the CPU) in whatever memory format x has. The C++ backends keep the 3x3 convolutions with the vendor libraries
// (the Triton backend has its own, kernels/conv.py); the op is composite, so ATen's autograd and tracing apply.
#include "common.h"

namespace mdrn_fast {

at::Tensor conv3x3(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, std::optional<double> slope,
                   const std::optional<at::Tensor>& residual) {
  MDRN_CHECK_FLOAT("x", x);
  MDRN_CHECK_DIM("x", x, 4);
  MDRN_CHECK_DIM("weight", weight, 4);
  MDRN_CHECK_SAME("x", x, "weight", weight);
  MDRN_CHECK_SAME("x", x, "bias", bias);
  TORCH_CHECK(weight.size(1) == x.size(1) && weight.size(2) == 3 && weight.size(3) == 3, "weight: expected shape [",
              weight.size(0), ", ", x.size(1), ", 3, 3], got ", weight.sizes());
  TORCH_CHECK(!(slope.has_value() && residual.has_value()), "slope and residual: give one or the other");
  at::Tensor out = at::conv2d(x, weight, bias, /*stride=*/1, /*padding=*/1);
  if (slope.has_value()) return at::leaky_relu_(out, *slope);
  if (residual.has_value()) {
    MDRN_CHECK_SAME("x", x, "residual", *residual);
    TORCH_CHECK(residual->sizes() == out.sizes(), "residual: expected shape ", out.sizes(), ", got ",
                residual->sizes());
    return out.add_(*residual);
  }
  return out;
}

TORCH_LIBRARY_FRAGMENT(mdrn_fast, m) {
  m.def("conv3x3(Tensor x, Tensor weight, Tensor bias, float? slope, Tensor? residual) -> Tensor");
}

TORCH_LIBRARY_IMPL(mdrn_fast, CompositeImplicitAutograd, m) { m.impl("conv3x3", &conv3x3); }

}  // namespace mdrn_fast
