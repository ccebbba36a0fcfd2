// Epilogues on CUDA: bias + LeakyReLU forward and backward (math in csrc/epilogue.cpp).
// The backward writes g_t and reduces g_b in the same pass: one block per (n, c) plane (NCHW) or per chunk of pixel
// rows (channels-last) writes its partial sums, and their sum follows in a fixed order (deterministic, as the CPU
// and Triton backends).
#include "cuda_common.cuh"
#include "../passes/epilogue.h"

namespace mdrn_fast {
namespace cuda {
namespace {

template <typename scalar_t, typename index_t, bool kChannelsLast>
__global__ void bias_lrelu_forward_kernel(const scalar_t* __restrict__ t,     // [N, C, HW] or [N*HW, C]
                                          const scalar_t* __restrict__ bias,  // [C]
                                          scalar_t* __restrict__ out, index_t total, index_t C, index_t HW,
                                          at::opmath_type<scalar_t> slope) {
  using acc_t = at::opmath_type<scalar_t>;
  MDRN_GRID_LOOP_T(i, total) {
    const index_t c = kChannelsLast ? i % C : (i / HW) % C;
    const acc_t v = static_cast<acc_t>(t[i]) + static_cast<acc_t>(bias[c]);
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

// The backward over channels-last rows [rows, C], one column reduction (cuda_common.cuh) per block: its rows'
// column sums go to chunk_sums[x, c], summed over x afterwards in a fixed order.
template <typename scalar_t, typename index_t>
__global__ void bias_lrelu_backward_rows_kernel(const scalar_t* __restrict__ grad,  // [rows, C]
                                                const scalar_t* __restrict__ out,   // saved forward output
                                                scalar_t* __restrict__ grad_t,      // [rows, C]
                                                at::opmath_type<scalar_t>* __restrict__ chunk_sums,  // [chunks, C]
                                                index_t rows, index_t C, at::opmath_type<scalar_t> slope) {
  using acc_t = at::opmath_type<scalar_t>;
  const int lane = threadIdx.x / kColumns;
  const index_t c = blockIdx.y * kColumns + threadIdx.x % kColumns, r0 = blockIdx.x * kRowsPerBlock;
  const index_t r1 = min(rows, static_cast<index_t>(r0 + kRowsPerBlock));
  acc_t acc = 0;
  if (c < C) {
    for (index_t r = r0 + lane; r < r1; r += kRowLanes) {
      const index_t i = r * C + c;
      const acc_t mask = static_cast<acc_t>(out[i]) > 0 ? acc_t(1) : slope;
      const acc_t g = static_cast<acc_t>(grad[i]) * mask;
      grad_t[i] = static_cast<scalar_t>(g);
      acc += g;
    }
  }
  acc = column_sum(acc);
  if (lane == 0 && c < C) chunk_sums[static_cast<int64_t>(blockIdx.x) * C + c] = acc;
}

std::tuple<at::Tensor, at::Tensor> bias_lrelu_backward_channels_last(const at::Tensor& grad, const at::Tensor& out,
                                                                     double slope) {
  at::Tensor grad_t = at::empty_like(grad);
  const int64_t C = grad.size(1), rows = grad.numel() / std::max<int64_t>(1, C);
  const int64_t chunks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
  at::Tensor chunk_sums = at::empty({chunks, C}, grad.options().dtype(at::toOpMathType(grad.scalar_type())));
  const dim3 grid(static_cast<unsigned>(chunks), static_cast<unsigned>((C + kColumns - 1) / kColumns));
  MDRN_DISPATCH(grad.scalar_type(), "bias_lrelu_backward_cuda", [&] {
    MDRN_DISPATCH_INDEX(grad.numel(), [&] {
      bias_lrelu_backward_rows_kernel<scalar_t, index_t><<<grid, kThreads, 0, stream()>>>(
          grad.const_data_ptr<scalar_t>(), out.const_data_ptr<scalar_t>(), grad_t.mutable_data_ptr<scalar_t>(),
          chunk_sums.mutable_data_ptr<at::opmath_type<scalar_t>>(), rows, C,
          static_cast<at::opmath_type<scalar_t>>(slope));
    });
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {grad_t, chunk_sums.sum(0).to(grad.scalar_type())};
}

}  // namespace

at::Tensor bias_lrelu(const at::Tensor& t, const at::Tensor& bias, double slope, bool channels_last) {
  const c10::cuda::CUDAGuard guard(t.device());
  at::Tensor out = at::empty_like(t);
  const int64_t total = t.numel(), C = t.size(1), HW = total / std::max<int64_t>(1, t.size(0) * C);
  MDRN_DISPATCH(t.scalar_type(), "bias_lrelu_cuda", [&] {
    MDRN_DISPATCH_INDEX(total, [&] {
      const auto launch = [&](auto kernel) {
        kernel<<<blocks_for(total), kThreads, 0, stream()>>>(
            t.const_data_ptr<scalar_t>(), bias.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(),
            static_cast<index_t>(total), static_cast<index_t>(C), static_cast<index_t>(HW),
            static_cast<at::opmath_type<scalar_t>>(slope));  // double for double: no float rounding
      };
      if (channels_last)
        launch(bias_lrelu_forward_kernel<scalar_t, index_t, true>);
      else
        launch(bias_lrelu_forward_kernel<scalar_t, index_t, false>);
    });
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

std::tuple<at::Tensor, at::Tensor> bias_lrelu_backward(const at::Tensor& grad, const at::Tensor& out, double slope,
                                                       bool channels_last) {
  const c10::cuda::CUDAGuard guard(grad.device());
  if (channels_last) return bias_lrelu_backward_channels_last(grad, out, slope);
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
