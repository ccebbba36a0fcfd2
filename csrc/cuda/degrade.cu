// DEGRADE passes on CUDA (math in csrc/degrade.cpp): forward and backward as whole passes around cuBLAS. The
// patch gather and its adjoint run one thread per written element so that stores are coalesced; patches do not
// overlap, so the adjoint needs no atomics.
#include "cuda_common.cuh"
#include "../passes/degrade.h"
#include "../passes/epilogue.h"  // the LeakyReLU epilogue of patch_conv

namespace mdrn_fast {
namespace cuda {
namespace {

template <typename scalar_t, typename index_t>
__global__ void patches_kernel(const scalar_t* __restrict__ x,  // [N, C, H, W]
                               scalar_t* __restrict__ p,        // [N, C*s*s, Ho*Wo]
                               index_t total, index_t H, index_t W, index_t s, index_t Ho, index_t Wo) {
  MDRN_GRID_LOOP_T(e, total) {
    const index_t l = e % (Ho * Wo), r = e / (Ho * Wo);  // r = (n, c, i, j)
    const index_t j = r % s, i = (r / s) % s, nc = r / (s * s), ho = l / Wo, wo = l % Wo;
    p[e] = x[(nc * H + ho * s + i) * W + wo * s + j];
  }
}

template <typename scalar_t, typename index_t>
__global__ void patches_backward_kernel(const scalar_t* __restrict__ p,  // [N, C*s*s, Ho*Wo]
                                        scalar_t* __restrict__ x,        // [N, C, H, W]
                                        index_t total, index_t H, index_t W, index_t s, index_t Ho, index_t Wo) {
  MDRN_GRID_LOOP_T(e, total) {
    const index_t w = e % W, h = (e / W) % H, nc = e / (H * W), ho = h / s, wo = w / s;
    x[e] = (ho < Ho && wo < Wo) ? p[((nc * s + h % s) * s + w % s) * Ho * Wo + ho * Wo + wo] : scalar_t(0);
  }
}

}  // namespace

static at::Tensor patches(const at::Tensor& x, int64_t s) {  // x -> [N, C*s*s, Ho*Wo]
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), Ho = H / s, Wo = W / s;
  at::Tensor p = at::empty({N, C * s * s, Ho * Wo}, x.options());
  const int64_t total = p.numel();
  MDRN_DISPATCH(x.scalar_type(), "patches_cuda", [&] {
    MDRN_DISPATCH_INDEX(std::max(total, x.numel()), [&] {
      patches_kernel<scalar_t, index_t><<<blocks_for(total), kThreads, 0, stream()>>>(
          x.const_data_ptr<scalar_t>(), p.mutable_data_ptr<scalar_t>(), total, H, W, s, Ho, Wo);
    });
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return p;
}

static at::Tensor patches_backward(const at::Tensor& p, int64_t s, int64_t H, int64_t W) {  // its adjoint
  const c10::cuda::CUDAGuard guard(p.device());
  const int64_t N = p.size(0), C = p.size(1) / (s * s);
  at::Tensor x = at::empty({N, C, H, W}, p.options());
  const int64_t total = x.numel();
  MDRN_DISPATCH(p.scalar_type(), "patches_backward_cuda", [&] {
    MDRN_DISPATCH_INDEX(std::max(total, p.numel()), [&] {
      patches_backward_kernel<scalar_t, index_t><<<blocks_for(total), kThreads, 0, stream()>>>(
          p.const_data_ptr<scalar_t>(), x.mutable_data_ptr<scalar_t>(), total, H, W, s, H / s, W / s);
    });
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return x;
}

at::Tensor patch_conv(const at::Tensor& x, const at::Tensor& w2, const at::Tensor& bias, int64_t s, double slope) {
  const int64_t N = x.size(0), Co = w2.size(0), Ho = x.size(2) / s, Wo = x.size(3) / s;
  const at::Tensor pre = batched_mm(w2, patches(x, s)).view({N, Co, Ho, Wo});  // gather, cuBLAS, epilogue
  return bias_lrelu(pre, bias, slope, /*channels_last=*/false);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> patch_conv_backward(const at::Tensor& grad, const at::Tensor& out,
                                                                   const at::Tensor& x, const at::Tensor& w2,
                                                                   int64_t s, double slope) {
  const int64_t N = x.size(0), Co = w2.size(0);
  auto [d, grad_b] = bias_lrelu_backward(grad, out, slope, /*channels_last=*/false);
  const at::Tensor dv = d.view({N, Co, -1});
  const at::Tensor p = patches(x, s);
  const at::Tensor grad_w2 = at::bmm(dv, p.transpose(1, 2)).sum(0);
  const at::Tensor grad_x = patches_backward(batched_mm(w2.t(), dv), s, x.size(2), x.size(3));
  return {grad_x, grad_w2, grad_b};
}

}  // namespace cuda
}  // namespace mdrn_fast
