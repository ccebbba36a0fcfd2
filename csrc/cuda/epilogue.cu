// Epilogues on CUDA: bias + LeakyReLU forward and backward (math in csrc/epilogue.cpp).
// The backward writes g_t and reduces g_b in the same pass: one block per (n, c) plane writes its plane's sum, and
// the sum over n follows in a fixed order (deterministic, as the CPU and Triton backends).
#include "cuda_common.cuh"
#include "../passes/epilogue.h"

namespace mdrn_fast {
namespace cuda {
namespace {

template <typename scalar_t, typename index_t>
__global__ void bias_lrelu_forward_kernel(const scalar_t* __restrict__ t,     // [N, C, HW]
                                          const scalar_t* __restrict__ bias,  // [C]
                                          scalar_t* __restrict__ out, index_t total, index_t C, index_t HW,
                                          at::opmath_type<scalar_t> slope) {
  using acc_t = at::opmath_type<scalar_t>;
  MDRN_GRID_LOOP_T(i, total) {
    const acc_t v = static_cast<acc_t>(t[i]) + static_cast<acc_t>(bias[(i / HW) % C]);
    out[i] = static_cast<scalar_t>(v > 0 ? v : v * slope);
  }
}

template <typename scalar_t>
__global__ void bias_lrelu_backward_kernel(const scalar_t* __restrict__ grad,  // [N, C, HW]
                                           const scalar_t* __restrict__ out,   // saved forward output
                                           scalar_t* __restrict__ grad_t,      // [N, C, HW]
                                           at::opmath_type<scalar_t>* __restrict__ plane_sums,  // [N, C]
                                           int64_t HW, at::opmath_type<scalar_t> slope) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t base = blockIdx.x * HW;
  acc_t acc = 0;
  for (int64_t i = threadIdx.x; i < HW; i += blockDim.x) {
    const acc_t mask = static_cast<acc_t>(out[base + i]) > 0 ? acc_t(1) : slope;
    const acc_t g = static_cast<acc_t>(grad[base + i]) * mask;
    grad_t[base + i] = static_cast<scalar_t>(g);
    acc += g;
  }
  acc = block_sum(acc);
  if (threadIdx.x == 0) plane_sums[blockIdx.x] = acc;
}

}  // namespace

at::Tensor bias_lrelu(const at::Tensor& t, const at::Tensor& bias, double slope) {
  const c10::cuda::CUDAGuard guard(t.device());
  at::Tensor out = at::empty_like(t);
  const int64_t total = t.numel(), C = t.size(1), HW = total / std::max<int64_t>(1, t.size(0) * C);
  MDRN_DISPATCH(t.scalar_type(), "bias_lrelu_cuda", [&] {
    MDRN_DISPATCH_INDEX(total, [&] {
      bias_lrelu_forward_kernel<scalar_t, index_t><<<blocks_for(total), kThreads, 0, stream()>>>(
          t.const_data_ptr<scalar_t>(), bias.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), total,
          C, HW, static_cast<at::opmath_type<scalar_t>>(slope));  // double for double: no float rounding
    });
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

std::tuple<at::Tensor, at::Tensor> bias_lrelu_backward(const at::Tensor& grad, const at::Tensor& out, double slope) {
  const c10::cuda::CUDAGuard guard(grad.device());
  at::Tensor grad_t = at::empty_like(grad);
  const int64_t C = grad.size(1), planes = grad.size(0) * C, HW = grad.numel() / std::max<int64_t>(1, planes);
  at::Tensor plane_sums = at::empty({grad.size(0), C}, grad.options().dtype(at::toOpMathType(grad.scalar_type())));
  MDRN_DISPATCH(grad.scalar_type(), "bias_lrelu_backward_cuda", [&] {
    bias_lrelu_backward_kernel<scalar_t><<<static_cast<unsigned>(planes), kThreads, 0, stream()>>>(
        grad.const_data_ptr<scalar_t>(), out.const_data_ptr<scalar_t>(), grad_t.mutable_data_ptr<scalar_t>(),
        plane_sums.mutable_data_ptr<at::opmath_type<scalar_t>>(), HW, static_cast<at::opmath_type<scalar_t>>(slope));
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {grad_t, plane_sums.sum(0).to(grad.scalar_type())};
}

}  // namespace cuda
}  // namespace mdrn_fast
