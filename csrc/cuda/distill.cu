// Distillation passes on CUDA (math in csrc/distill.cpp): l1 / l2 chunk sums (one block per chunk, so the
// result does not depend on the launch), their gradient, and the channel energy of attention transfer with
// its backward. FAKD's tiles are GEMMs and need no kernel of their own.
#include "cuda_common.cuh"
#include "../passes/distill.h"

namespace mdrn_fast {
namespace cuda {
namespace {

template <typename scalar_t, bool kSquare>
__global__ void lp_partials_kernel(const scalar_t* __restrict__ a, const scalar_t* __restrict__ b,
                                   at::opmath_type<scalar_t>* __restrict__ partials, int64_t total) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t lo = blockIdx.x * kLpChunk, hi = min(total, lo + kLpChunk);
  acc_t acc = 0;
  for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
    const acc_t d = static_cast<acc_t>(a[i]) - static_cast<acc_t>(b[i]);
    acc += kSquare ? d * d : abs(d);
  }
  acc = block_sum(acc);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

template <typename scalar_t>
__global__ void lp_backward_kernel(const at::opmath_type<scalar_t>* __restrict__ grad,  // 0-d
                                   const scalar_t* __restrict__ a, const scalar_t* __restrict__ b,
                                   scalar_t* __restrict__ out, int64_t total, bool square) {
  using acc_t = at::opmath_type<scalar_t>;
  const acc_t scale = *grad / static_cast<acc_t>(total);
  MDRN_GRID_LOOP(i, total) {
    const acc_t d = static_cast<acc_t>(a[i]) - static_cast<acc_t>(b[i]);
    const acc_t g = square ? 2 * d : static_cast<acc_t>((d > 0) - (d < 0));
    out[i] = static_cast<scalar_t>(scale * g);
  }
}

// One thread per (n, position), walking the channels: neighbouring threads read neighbouring addresses.
template <typename scalar_t>
__global__ void channel_energy_kernel(const scalar_t* __restrict__ f, at::opmath_type<scalar_t>* __restrict__ out,
                                      int64_t N, int64_t C, int64_t HW) {
  using acc_t = at::opmath_type<scalar_t>;
  MDRN_GRID_LOOP(i, N * HW) {
    const int64_t n = i / HW, p = i % HW;
    const scalar_t* col = f + n * C * HW + p;
    acc_t acc = 0;
    for (int64_t c = 0; c < C; ++c) {
      const acc_t v = static_cast<acc_t>(col[c * HW]);
      acc += v * v;
    }
    out[i] = acc / static_cast<acc_t>(C);
  }
}

template <typename scalar_t>
__global__ void channel_energy_backward_kernel(const at::opmath_type<scalar_t>* __restrict__ grad,  // [N, HW]
                                               const scalar_t* __restrict__ f, scalar_t* __restrict__ out,
                                               int64_t total, int64_t C, int64_t HW) {
  using acc_t = at::opmath_type<scalar_t>;
  const acc_t two_over_c = static_cast<acc_t>(2) / static_cast<acc_t>(C);
  MDRN_GRID_LOOP(e, total) {
    const int64_t n = e / (C * HW), p = e % HW;
    out[e] = static_cast<scalar_t>(static_cast<acc_t>(f[e]) * grad[n * HW + p] * two_over_c);
  }
}

}  // namespace

at::Tensor lp_partials(const at::Tensor& a, const at::Tensor& b, bool square) {
  const c10::cuda::CUDAGuard guard(a.device());
  const int64_t total = a.numel(), chunks = (total + kLpChunk - 1) / kLpChunk;
  at::Tensor out = at::empty({chunks}, a.options().dtype(at::toOpMathType(a.scalar_type())));
  MDRN_DISPATCH(a.scalar_type(), "lp_partials_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    auto launch = square ? lp_partials_kernel<scalar_t, true> : lp_partials_kernel<scalar_t, false>;
    launch<<<static_cast<unsigned>(chunks), kThreads, 0, stream()>>>(
        a.const_data_ptr<scalar_t>(), b.const_data_ptr<scalar_t>(), out.mutable_data_ptr<acc_t>(), total);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

at::Tensor lp_backward(const at::Tensor& grad, const at::Tensor& a, const at::Tensor& b, bool square) {
  const c10::cuda::CUDAGuard guard(a.device());
  at::Tensor out = at::empty_like(a);
  const int64_t total = a.numel();
  MDRN_DISPATCH(a.scalar_type(), "lp_backward_cuda", [&] {
    lp_backward_kernel<scalar_t><<<blocks_for(total), kThreads, 0, stream()>>>(
        grad.const_data_ptr<at::opmath_type<scalar_t>>(), a.const_data_ptr<scalar_t>(), b.const_data_ptr<scalar_t>(),
        out.mutable_data_ptr<scalar_t>(), total, square);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

at::Tensor channel_energy(const at::Tensor& f) {
  const c10::cuda::CUDAGuard guard(f.device());
  const int64_t N = f.size(0), C = f.size(1), HW = f.numel() / (N * C);
  at::Tensor out = at::empty({N, HW}, f.options().dtype(at::toOpMathType(f.scalar_type())));
  MDRN_DISPATCH(f.scalar_type(), "channel_energy_cuda", [&] {
    channel_energy_kernel<scalar_t><<<blocks_for(N * HW), kThreads, 0, stream()>>>(
        f.const_data_ptr<scalar_t>(), out.mutable_data_ptr<at::opmath_type<scalar_t>>(), N, C, HW);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

at::Tensor channel_energy_backward(const at::Tensor& grad, const at::Tensor& f) {
  const c10::cuda::CUDAGuard guard(f.device());
  const int64_t N = f.size(0), C = f.size(1), HW = f.numel() / (N * C);
  at::Tensor out = at::empty_like(f);
  MDRN_DISPATCH(f.scalar_type(), "channel_energy_backward_cuda", [&] {
    channel_energy_backward_kernel<scalar_t><<<blocks_for(f.numel()), kThreads, 0, stream()>>>(
        grad.const_data_ptr<at::opmath_type<scalar_t>>(), f.const_data_ptr<scalar_t>(),
        out.mutable_data_ptr<scalar_t>(), f.numel(), C, HW);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

}  // namespace cuda
}  // namespace mdrn_fast
