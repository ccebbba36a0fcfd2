// RECONSTRUCT passes on CUDA (math in csrc/reconstruct.cpp): the GEMM then the bias + pixel-shuffle store, and
// its adjoint with the bias gradient reduced in the same pass (one block per (n, k) plane writes its plane's sum;
// the sum over n follows in a fixed order: deterministic, as the CPU and Triton backends).
#include "cuda_common.cuh"
#include "../passes/reconstruct.h"

namespace mdrn_fast {
namespace cuda {
namespace {

template <typename scalar_t, typename index_t>
__global__ void shuffle_bias_kernel(const scalar_t* __restrict__ y,     // [N, C*s*s, h*w]
                                    const scalar_t* __restrict__ bias,  // [C*s*s]
                                    scalar_t* __restrict__ out,         // [N, C, h*s, w*s]
                                    index_t total, index_t C, index_t s, index_t h, index_t w) {
  using acc_t = at::opmath_type<scalar_t>;
  const index_t Ho = h * s, Wo = w * s;
  MDRN_GRID_LOOP_T(e, total) {
    const index_t col = e % Wo, row = (e / Wo) % Ho, nc = e / (Ho * Wo), c = nc % C;
    const index_t k = (c * s + row % s) * s + col % s;
    const index_t src = ((nc - c) * s * s + k) * h * w + (row / s) * w + col / s;
    out[e] = static_cast<scalar_t>(static_cast<acc_t>(y[src]) + static_cast<acc_t>(bias[k]));
  }
}

template <typename scalar_t>
__global__ void unshuffle_sum_kernel(const scalar_t* __restrict__ g,  // [N, C, h*s, w*s]
                                     scalar_t* __restrict__ gu,       // [N, C*s*s, h*w]
                                     at::opmath_type<scalar_t>* __restrict__ plane_sums,  // [N, C*s*s]
                                     int64_t C, int64_t s, int64_t h, int64_t w) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t K = C * s * s, r = blockIdx.x, k = r % K, n = r / K;
  const int64_t j = k % s, i = (k / s) % s, c = k / (s * s), Wo = w * s;
  const scalar_t* src = g + ((n * C + c) * h * s + i) * Wo + j;
  acc_t acc = 0;
  for (int64_t l = threadIdx.x; l < h * w; l += blockDim.x) {
    const scalar_t v = src[(l / w) * s * Wo + (l % w) * s];
    gu[r * h * w + l] = v;
    acc += static_cast<acc_t>(v);
  }
  acc = block_sum(acc);
  if (threadIdx.x == 0) plane_sums[r] = acc;
}

}  // namespace

at::Tensor conv1x1_shuffle(const at::Tensor& hin, const at::Tensor& w2, const at::Tensor& bias, int64_t s) {
  const c10::cuda::CUDAGuard guard(hin.device());
  const int64_t N = hin.size(0), C = w2.size(0) / (s * s), h = hin.size(2), w = hin.size(3);
  const at::Tensor y = batched_mm(w2, hin.view({N, hin.size(1), h * w}));  // cuBLAS, then one store pass
  at::Tensor out = at::empty({N, C, h * s, w * s}, y.options());
  const int64_t total = out.numel();
  MDRN_DISPATCH(y.scalar_type(), "shuffle_bias_cuda", [&] {
    MDRN_DISPATCH_INDEX(total, [&] {
      shuffle_bias_kernel<scalar_t, index_t><<<blocks_for(total), kThreads, 0, stream()>>>(
          y.const_data_ptr<scalar_t>(), bias.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), total,
          C, s, h, w);
    });
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

std::tuple<at::Tensor, at::Tensor> unshuffle_sum(const at::Tensor& g, int64_t s) {
  const c10::cuda::CUDAGuard guard(g.device());
  const int64_t N = g.size(0), C = g.size(1), h = g.size(2) / s, w = g.size(3) / s, K = C * s * s;
  at::Tensor gu = at::empty({N, K, h * w}, g.options());
  at::Tensor plane_sums = at::empty({N, K}, g.options().dtype(at::toOpMathType(g.scalar_type())));
  MDRN_DISPATCH(g.scalar_type(), "unshuffle_sum_cuda", [&] {
    unshuffle_sum_kernel<scalar_t><<<static_cast<unsigned>(N * K), kThreads, 0, stream()>>>(
        g.const_data_ptr<scalar_t>(), gu.mutable_data_ptr<scalar_t>(),
        plane_sums.mutable_data_ptr<at::opmath_type<scalar_t>>(), C, s, h, w);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {gu, plane_sums.sum(0).to(g.scalar_type())};
}

}  // namespace cuda
}  // namespace mdrn_fast
