// add_noise on CUDA (math in csrc/noise.cpp): one thread per group of 4 elements, the same Philox stream
// as the CPU kernel.
#include "cuda_common.cuh"
#include "../passes/noise.h"
#include "../philox.h"

namespace mdrn_fast {
namespace cuda {
namespace {

template <typename scalar_t>
__global__ void add_noise_kernel(const scalar_t* __restrict__ x, const float* __restrict__ std,  // [N]
                                 scalar_t* __restrict__ out, int64_t total, int64_t per_sample, uint64_t seed,
                                 bool clip) {
  MDRN_GRID_LOOP(g, (total + 3) / 4) {
    float z[4];
    normal4(static_cast<uint64_t>(g), seed, z);
    for (int k = 0; k < 4; ++k) {
      const int64_t e = 4 * g + k;
      if (e >= total) break;
      float v = static_cast<float>(x[e]) + std[e / per_sample] * z[k];
      if (clip) v = fminf(1.0f, fmaxf(0.0f, v));
      out[e] = static_cast<scalar_t>(v);
    }
  }
}

}  // namespace

at::Tensor add_noise(const at::Tensor& x, const at::Tensor& std, int64_t seed, bool clip) {
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor out = at::empty_like(x);
  const int64_t total = x.numel();
  MDRN_DISPATCH(x.scalar_type(), "add_noise_cuda", [&] {
    add_noise_kernel<scalar_t><<<blocks_for((total + 3) / 4), kThreads, 0, stream()>>>(
        x.const_data_ptr<scalar_t>(), std.const_data_ptr<float>(), out.mutable_data_ptr<scalar_t>(), total,
        total / x.size(0), static_cast<uint64_t>(seed), clip);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

}  // namespace cuda
}  // namespace mdrn_fast
