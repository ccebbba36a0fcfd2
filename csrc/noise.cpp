// add_noise: y = x + std[n] * z, z ~ N(0, 1) from Philox4x32-10 keyed by `seed`; element e takes normal
// e % 4 of counter e / 4, so the CPU and CUDA kernels draw the same numbers for the same seed.
// Optional clip to [0, 1]. The gradient with respect to x is the identity (handled in Python).
#include <ATen/Parallel.h>

#include "common.h"
#include "passes.h"
#include "philox.h"

namespace mdrn_fast {
namespace cpu {

at::Tensor add_noise(const at::Tensor& x, const at::Tensor& std, int64_t seed, bool clip) {
  at::Tensor out = at::empty_like(x);
  const int64_t total = x.numel(), per_sample = total / x.size(0), groups = (total + 3) / 4;
  MDRN_DISPATCH(x.scalar_type(), "add_noise_cpu", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const float* sp = std.const_data_ptr<float>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, groups, 1024, [&](int64_t begin, int64_t end) {
      for (int64_t g = begin; g < end; ++g) {
        float z[4];
        normal4(static_cast<uint64_t>(g), static_cast<uint64_t>(seed), z);
        for (int64_t k = 0; k < 4 && 4 * g + k < total; ++k) {
          const int64_t e = 4 * g + k;
          float v = static_cast<float>(xp[e]) + sp[e / per_sample] * z[k];
          if (clip) v = std::min(1.0f, std::max(0.0f, v));
          op[e] = static_cast<scalar_t>(v);
        }
      }
    });
  });
  return out;
}

}  // namespace cpu

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
