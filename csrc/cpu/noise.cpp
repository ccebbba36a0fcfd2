// The CPU passes of the noise family, declared in csrc/passes/noise.h (the op, its checks and schema:
// csrc/noise.cpp; the same passes on CUDA: csrc/cuda/noise.cu).
#include <ATen/Parallel.h>

#include "../common.h"
#include "../passes/noise.h"
#include "../philox.h"

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

}  // namespace mdrn_fast
