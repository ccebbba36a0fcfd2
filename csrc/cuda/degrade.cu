// DEGRADE passes on CUDA (math in csrc/degrade.cpp): the forward (gather, cuBLAS, epilogue); the patch gather
// and its adjoint, one thread per written element so that stores are coalesced; patches do not overlap, so the
// adjoint needs no atomics.
#include "cuda_common.cuh"
#include "../passes.h"

namespace mdrn_fast {
namespace cuda {
namespace {

template <typename scalar_t>
__global__ void patches_kernel(const scalar_t* __restrict__ x,  // [N, C, H, W]
                               scalar_t* __restrict__ p,        // [N, C*s*s, Ho*Wo]
                               int64_t total, int64_t H, int64_t W, int64_t s, int64_t Ho, int64_t Wo) {
  MDRN_GRID_LOOP(e, total) {
    const int64_t l = e % (Ho * Wo), r = e / (Ho * Wo);  // r = (n, c, i, j)
    const int64_t j = r % s, i = (r / s) % s, nc = r / (s * s), ho = l / Wo, wo = l % Wo;
    p[e] = x[(nc * H + ho * s + i) * W + wo * s + j];
  }
}

template <typename scalar_t>
__global__ void patches_backward_kernel(const scalar_t* __restrict__ p,  // [N, C*s*s, Ho*Wo]
                                        scalar_t* __restrict__ x,        // [N, C, H, W]
                                        int64_t total, int64_t H, int64_t W, int64_t s, int64_t Ho, int64_t Wo) {
  MDRN_GRID_LOOP(e, total) {
    const int64_t w = e % W, h = (e / W) % H, nc = e / (H * W), ho = h / s, wo = w / s;
    x[e] = (ho < Ho && wo < Wo) ? p[((nc * s + h % s) * s + w % s) * Ho * Wo + ho * Wo + wo] : scalar_t(0);
  }
}

}  // namespace

at::Tensor patches(const at::Tensor& x, int64_t s) {
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), Ho = H / s, Wo = W / s;
  at::Tensor p = at::empty({N, C * s * s, Ho * Wo}, x.options());
  const int64_t total = p.numel();
  MDRN_DISPATCH(x.scalar_type(), "patches_cuda", [&] {
    patches_kernel<scalar_t><<<blocks_for(total), kThreads, 0, stream()>>>(
        x.const_data_ptr<scalar_t>(), p.mutable_data_ptr<scalar_t>(), total, H, W, s, Ho, Wo);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return p;
}

at::Tensor patch_conv(const at::Tensor& x, const at::Tensor& w2, const at::Tensor& bias, int64_t s, double slope) {
  const int64_t N = x.size(0), Co = w2.size(0), Ho = x.size(2) / s, Wo = x.size(3) / s;
  const at::Tensor pre = batched_mm(w2, patches(x, s)).view({N, Co, Ho, Wo});  // gather, cuBLAS, epilogue
  return bias_lrelu(pre, bias, slope);
}

at::Tensor patches_backward(const at::Tensor& p, int64_t s, int64_t H, int64_t W) {
  const c10::cuda::CUDAGuard guard(p.device());
  const int64_t N = p.size(0), C = p.size(1) / (s * s);
  at::Tensor x = at::empty({N, C, H, W}, p.options());
  const int64_t total = x.numel();
  MDRN_DISPATCH(p.scalar_type(), "patches_backward_cuda", [&] {
    patches_backward_kernel<scalar_t><<<blocks_for(total), kThreads, 0, stream()>>>(
        p.const_data_ptr<scalar_t>(), x.mutable_data_ptr<scalar_t>(), total, H, W, s, H / s, W / s);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return x;
}

}  // namespace cuda
}  // namespace mdrn_fast
