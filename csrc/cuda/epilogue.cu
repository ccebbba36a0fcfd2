// Epilogues on CUDA: bias + LeakyReLU forward and backward (math in csrc/epilogue.cpp).
// Include c10/cuda headers, not ATen/cuda/CUDAContext.h: that one pulls in cusparse.h and cublas_v2.h,
// which a CUDA toolkit without the math libraries (as on the CI machine) lacks.
// The backward writes g_t and reduces g_b in the same pass: one block per (n, c) plane.
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../common.h"

namespace mdrn_fast {
namespace {

constexpr int kThreads = 256;

template <typename scalar_t>
__global__ void bias_lrelu_forward_kernel(const scalar_t* __restrict__ t,  // [N, C, H, W] contiguous
                                          const scalar_t* __restrict__ bias,  // [C]
                                          scalar_t* __restrict__ out, int64_t total, int64_t C, int64_t HW,
                                          float slope) {
  using acc_t = at::opmath_type<scalar_t>;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const acc_t v = static_cast<acc_t>(t[i]) + static_cast<acc_t>(bias[(i / HW) % C]);
    out[i] = static_cast<scalar_t>(v > 0 ? v : v * static_cast<acc_t>(slope));
  }
}

template <typename scalar_t>
__global__ void bias_lrelu_backward_kernel(const scalar_t* __restrict__ grad,  // [N, C, H, W] contiguous
                                           const scalar_t* __restrict__ out,   // saved forward output
                                           scalar_t* __restrict__ grad_t,      // [N, C, H, W]
                                           at::opmath_type<scalar_t>* __restrict__ grad_b,  // [C], zeroed, accumulator dtype
                                           int64_t C, int64_t HW, float slope) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t plane = blockIdx.x;
  const int64_t base = plane * HW;
  acc_t acc = 0;
  for (int64_t i = threadIdx.x; i < HW; i += blockDim.x) {
    const acc_t g = static_cast<acc_t>(grad[base + i]) * (static_cast<acc_t>(out[base + i]) > 0 ? acc_t(1) : acc_t(slope));
    grad_t[base + i] = static_cast<scalar_t>(g);
    acc += g;
  }
  __shared__ acc_t shared[kThreads];
  shared[threadIdx.x] = acc;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) atomicAdd(grad_b + plane % C, shared[0]);
}

}  // namespace

at::Tensor bias_lrelu_cuda(const at::Tensor& t_in, const at::Tensor& bias_in, double slope) {
  MDRN_CHECK_FLOAT("t", t_in);
  MDRN_CHECK_DIM("t", t_in, 4);
  MDRN_CHECK_DIM("bias", bias_in, 1);
  MDRN_CHECK_SAME("t", t_in, "bias", bias_in);
  TORCH_CHECK(t_in.is_cuda(), "t: expected a CUDA tensor, got ", t_in.device());
  TORCH_CHECK(bias_in.size(0) == t_in.size(1), "bias: expected ", t_in.size(1), " channels, got ", bias_in.size(0));
  const c10::cuda::CUDAGuard guard(t_in.device());
  const at::Tensor t = t_in.contiguous();
  const at::Tensor bias = bias_in.contiguous();
  at::Tensor out = at::empty_like(t);
  const int64_t total = t.numel();
  if (total == 0) return out;
  const int blocks = static_cast<int>(std::min<int64_t>((total + kThreads - 1) / kThreads, 65535));
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, t.scalar_type(), "bias_lrelu_cuda", [&] {
    bias_lrelu_forward_kernel<scalar_t><<<blocks, kThreads, 0, stream>>>(
        t.data_ptr<scalar_t>(), bias.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), total, t.size(1),
        t.size(2) * t.size(3), static_cast<float>(slope));
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

std::tuple<at::Tensor, at::Tensor> bias_lrelu_backward_cuda(const at::Tensor& grad_in, const at::Tensor& out_in,
                                                            double slope) {
  MDRN_CHECK_FLOAT("grad", grad_in);
  MDRN_CHECK_DIM("grad", grad_in, 4);
  MDRN_CHECK_SAME("out", out_in, "grad", grad_in);
  TORCH_CHECK(grad_in.sizes() == out_in.sizes(), "grad: expected shape ", out_in.sizes(), ", got ", grad_in.sizes());
  TORCH_CHECK(grad_in.is_cuda(), "grad: expected a CUDA tensor, got ", grad_in.device());
  const c10::cuda::CUDAGuard guard(grad_in.device());
  const at::Tensor grad = grad_in.contiguous();
  const at::Tensor out = out_in.contiguous();
  at::Tensor grad_t = at::empty_like(grad);
  const int64_t C = grad.size(1), planes = grad.size(0) * C, HW = grad.size(2) * grad.size(3);
  at::Tensor grad_b_acc = at::zeros({C}, grad.options().dtype(at::toOpMathType(grad.scalar_type())));
  if (planes > 0 && HW > 0) {
    auto stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "bias_lrelu_backward_cuda", [&] {
      bias_lrelu_backward_kernel<scalar_t><<<static_cast<unsigned>(planes), kThreads, 0, stream>>>(
          grad.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), grad_t.data_ptr<scalar_t>(), grad_b_acc.data_ptr<at::opmath_type<scalar_t>>(),
          C, HW, static_cast<float>(slope));
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return {grad_t, grad_b_acc.to(grad.scalar_type())};
}

TORCH_LIBRARY_IMPL(mdrn_fast, CUDA, m) {
  m.impl("bias_lrelu", &bias_lrelu_cuda);
  m.impl("bias_lrelu_backward", &bias_lrelu_backward_cuda);
}

}  // namespace mdrn_fast
