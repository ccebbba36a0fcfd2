// The memory passes the fused ops are built from, one CPU and one CUDA implementation each.
// An op (csrc/<family>.cpp) is written once around vendor GEMMs (at::mm: oneDNN/MKL, cuBLAS) and these
// passes (the forward GEMM ops are passes too: on CPU they run tile by tile around the GEMM);
// `MDRN_PASS(name, device_tensor, args...)` picks the device's implementation.
// All tensors are NCHW-contiguous, viewed as [N, C, HW] where noted.
#pragma once
#include <ATen/ATen.h>

namespace mdrn_fast {

#define MDRN_DECLARE_PASSES(ns)                                                                             \
  namespace ns {                                                                                            \
  /* out = lrelu(t + bias[c]) */                                                                            \
  at::Tensor bias_lrelu(const at::Tensor& t, const at::Tensor& bias, double slope);                         \
  /* (g * lrelu'(out), sum over n, hw of it): the mask from the sign of the saved output */                 \
  std::tuple<at::Tensor, at::Tensor> bias_lrelu_backward(const at::Tensor& grad, const at::Tensor& out,     \
                                                         double slope);                                     \
  /* lrelu(w2 [Co, C*s*s] @ patches(x) + bias) [N, Co, Ho, Wo]: the degrade forward */                      \
  at::Tensor patch_conv(const at::Tensor& x, const at::Tensor& w2, const at::Tensor& bias, int64_t s,         \
                        double slope);                                                                      \
  /* its backward: (dx, dw2, dbias) from the gradient and the saved output */                               \
  std::tuple<at::Tensor, at::Tensor, at::Tensor> patch_conv_backward(const at::Tensor& grad, const at::Tensor& out, \
                                                                     const at::Tensor& x, const at::Tensor& w2,     \
                                                                     int64_t s, double slope);                      \
  /* pixel_shuffle(w2 [C*s*s, Ci] @ h + bias) [N, C, h*s, w*s]: the reconstruct forward */                 \
  at::Tensor conv1x1_shuffle(const at::Tensor& h, const at::Tensor& w2, const at::Tensor& bias, int64_t s);  \
  /* the adjoint of pixel_shuffle, and the bias gradient, in one pass: g [N, C, h*s, w*s] -> */              \
  /* ([N, C*s*s, h*w], [C*s*s]) */                                                                          \
  std::tuple<at::Tensor, at::Tensor> unshuffle_sum(const at::Tensor& g, int64_t s);                         \
  /* out = x + f * a[n, c] */                                                                               \
  at::Tensor scale_add(const at::Tensor& x, const at::Tensor& f, const at::Tensor& a);                      \
  /* [N, C] sums over HW of g * f */                                                                        \
  at::Tensor sum_product_hw(const at::Tensor& g, const at::Tensor& f);                                      \
  /* g * a[n, c] + d[n, c] */                                                                               \
  at::Tensor scale_shift(const at::Tensor& g, const at::Tensor& a, const at::Tensor& d);                    \
  /* x + std[n] * N(0, 1) from Philox4x32-10 keyed by seed, counter = element index / 4 */                  \
  at::Tensor add_noise(const at::Tensor& x, const at::Tensor& std, int64_t seed, bool clip);                \
  /* per-chunk sums of |a - b| (or (a - b)^2) over fixed chunks of kLpChunk elements, in the opmath dtype */ \
  at::Tensor lp_partials(const at::Tensor& a, const at::Tensor& b, bool square);                            \
  /* grad * d|a - b|/da / numel (sign, or 2 (a - b)), grad a 0-d opmath tensor */                           \
  at::Tensor lp_backward(const at::Tensor& grad, const at::Tensor& a, const at::Tensor& b, bool square);    \
  /* [N, HW] mean over channels of f^2, in the opmath dtype */                                              \
  at::Tensor channel_energy(const at::Tensor& f);                                                           \
  /* df = f * grad[n, hw] * 2 / C */                                                                        \
  at::Tensor channel_energy_backward(const at::Tensor& grad, const at::Tensor& f);                          \
  }

// Fixed chunking makes the l1 / l2 sums the same from run to run, whatever the thread or block count.
constexpr int64_t kLpChunk = 4096;

MDRN_DECLARE_PASSES(cpu)
#ifdef WITH_CUDA
MDRN_DECLARE_PASSES(cuda)
#define MDRN_PASS(name, like, ...) ((like).is_cuda() ? cuda::name(__VA_ARGS__) : cpu::name(__VA_ARGS__))
#else
[[noreturn]] inline void built_without_cuda() {
  TORCH_CHECK(false, "mdrn_fast._C was built without CUDA kernels; rebuild with nvcc available (see README)");
}
#define MDRN_PASS(name, like, ...) \
  ((like).is_cuda() ? (built_without_cuda(), cpu::name(__VA_ARGS__)) : cpu::name(__VA_ARGS__))
#endif

}  // namespace mdrn_fast
