// DEGRADE: out = lrelu(conv2d(x, W, b, stride=s)), W [Co, C, s, s], as a patch GEMM:
//   P = patches(x) [N, C*s*s, Ho*Wo]  (the s x s blocks, one gather pass)
//   out = bias_lrelu(W.view(Co, C*s*s) @ P, b)   (vendor GEMM, then one epilogue pass)
// Backward (D = dL/d(pre-activation), masked by the sign of the saved output, b's gradient in that pass):
//   dW = sum_n D_n P_n^T,  dP = W^T D,  dx = patches^T(dP)  (a scatter with no overlaps: no atomics)
// P is recomputed in the backward rather than saved: one gather instead of C*s*s*Ho*Wo stored values.
// On CPU both directions run per tile of output rows, with P, D and dP living in L2 only: x, out and grad are
// read once, out and dx written once. The CUDA passes (csrc/cuda/degrade.cu) make the steps whole passes.
// This file: the ops (checks, device-generic steps) and their schemas.
// Their passes: csrc/cpu/degrade.cpp, csrc/cuda/degrade.cu.
#include <algorithm>

#include "common.h"
#include "passes/degrade.h"

namespace mdrn_fast {

static void check_degrade(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, int64_t s, double slope) {
  MDRN_CHECK_FLOAT("x", x);
  MDRN_CHECK_DIM("x", x, 4);
  TORCH_CHECK(x.numel() > 0, "x: expected a non-empty tensor, got shape ", x.sizes());
  TORCH_CHECK(s >= 1, "scale: expected >= 1, got ", s);
  TORCH_CHECK(x.size(2) >= s && x.size(3) >= s, "x: spatial size ", x.sizes(), " is smaller than scale ", s);
  MDRN_CHECK_SAME("x", x, "weight", w);
  MDRN_CHECK_SAME("x", x, "bias", b);
  MDRN_CHECK_SHAPE("weight", w, w.size(0), x.size(1), s, s);
  MDRN_CHECK_SHAPE("bias", b, w.size(0));
  TORCH_CHECK(slope >= 0, "slope: expected >= 0, got ", slope);
}

at::Tensor degrade(const at::Tensor& x_in, const at::Tensor& w, const at::Tensor& b, int64_t s, double slope) {
  check_degrade(x_in, w, b, s, slope);
  const at::Tensor x = x_in.contiguous();
  return MDRN_PASS(patch_conv, x, x, w.reshape({w.size(0), -1}), b.contiguous(), s, slope);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> degrade_backward(const at::Tensor& grad, const at::Tensor& out,
                                                                const at::Tensor& x_in, const at::Tensor& w,
                                                                int64_t s, double slope) {
  check_degrade(x_in, w, at::empty({w.size(0)}, w.options()), s, slope);
  MDRN_CHECK_SAME("out", out, "grad", grad);
  TORCH_CHECK(grad.sizes() == out.sizes(), "grad: expected shape ", out.sizes(), ", got ", grad.sizes());
  const at::Tensor x = x_in.contiguous();
  auto [grad_x, grad_w2, grad_b] =
      MDRN_PASS(patch_conv_backward, x, grad.contiguous(), out.contiguous(), x, w.reshape({w.size(0), -1}), s, slope);
  return {grad_x, grad_w2.view_as(w), grad_b};
}

TORCH_LIBRARY_FRAGMENT(mdrn_fast, m) {
  m.def("degrade(Tensor x, Tensor weight, Tensor bias, int scale, float slope) -> Tensor");
  m.def("degrade_backward(Tensor grad, Tensor out, Tensor x, Tensor weight, int scale, float slope)"
        " -> (Tensor, Tensor, Tensor)");
}

MDRN_IMPL(m.impl("degrade", &degrade); m.impl("degrade_backward", &degrade_backward);)

}  // namespace mdrn_fast
