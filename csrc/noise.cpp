// add_noise: y = x + std[n] * z, z ~ N(0, 1) from Philox4x32-10 keyed by `seed`; element e takes normal
// e % 4 of counter e / 4, so the CPU and CUDA kernels draw the same numbers for the same seed.
// Optional clip to [0, 1]. The gradient with respect to x is the identity (handled in Python).
// This file: the ops (checks, device-generic steps) and their schemas.
// Their passes: csrc/cpu/noise.cpp, csrc/cuda/noise.cu.
#include "common.h"
#include "passes/noise.h"

namespace mdrn_fast {

at::Tensor add_noise(const at::Tensor& x_in, const at::Tensor& std_in, int64_t seed, bool clip) {
  MDRN_CHECK_FLOAT("x", x_in);
  TORCH_CHECK(x_in.dim() >= 1 && x_in.numel() > 0, "x: expected a non-empty batch, got shape ", x_in.sizes());
  TORCH_CHECK(std_in.device() == x_in.device(), "std is on ", std_in.device(), " but x is on ", x_in.device());
  MDRN_CHECK_SHAPE("std", std_in, x_in.size(0));
  return MDRN_PASS(add_noise, x_in, x_in.contiguous(), std_in.to(at::kFloat).contiguous(), seed, clip);
}

TORCH_LIBRARY_FRAGMENT(mdrn_fast, m) { m.def("add_noise(Tensor x, Tensor std, int seed, bool clip) -> Tensor"); }

MDRN_IMPL(m.impl("add_noise", &add_noise);)

}  // namespace mdrn_fast
