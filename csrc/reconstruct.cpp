// RECONSTRUCT: out = pixel_shuffle(conv1x1(h, W, b), s), W [C*s*s, Ci]:
//   Y = W @ h.view(N, Ci, hw)   (vendor GEMM, written NCHW directly: no transpose)
//   out = pixel_shuffle(Y + b)   (bias and the pixel-shuffle scatter in the one store pass; on CPU per tile of
//                                 rows, so that Y never makes a trip through memory)
// Backward: (G, db) = unshuffle_sum(dout) (the adjoint gather, b's gradient in the same pass);
//   dh = W^T G,  dW = sum_n G_n h_n^T.
// This file: the ops (checks, device-generic steps) and their schemas.
// Their passes: csrc/cpu/reconstruct.cpp, csrc/cuda/reconstruct.cu.
#include <algorithm>

#include "common.h"
#include "passes/reconstruct.h"

namespace mdrn_fast {

static void check_reconstruct(const at::Tensor& h, const at::Tensor& w, int64_t s) {
  MDRN_CHECK_FLOAT("h", h);
  MDRN_CHECK_DIM("h", h, 4);
  TORCH_CHECK(h.numel() > 0, "h: expected a non-empty tensor, got shape ", h.sizes());
  TORCH_CHECK(s >= 1, "scale: expected >= 1, got ", s);
  MDRN_CHECK_SAME("h", h, "weight", w);
  TORCH_CHECK(w.size(0) % (s * s) == 0, "weight: output channels ", w.size(0), " are not a multiple of scale**2");
  MDRN_CHECK_SHAPE("weight", w, w.size(0), h.size(1), 1, 1);
}

at::Tensor reconstruct(const at::Tensor& h_in, const at::Tensor& w, const at::Tensor& b, int64_t s) {
  check_reconstruct(h_in, w, s);
  MDRN_CHECK_SAME("h", h_in, "bias", b);
  MDRN_CHECK_SHAPE("bias", b, w.size(0));
  const at::Tensor h = h_in.contiguous();
  return MDRN_PASS(conv1x1_shuffle, h, h, w.reshape({w.size(0), -1}), b.contiguous(), s);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> reconstruct_backward(const at::Tensor& grad, const at::Tensor& h_in,
                                                                    const at::Tensor& w, int64_t s) {
  check_reconstruct(h_in, w, s);
  MDRN_CHECK_SAME("h", h_in, "grad", grad);
  MDRN_CHECK_SHAPE("grad", grad, h_in.size(0), w.size(0) / (s * s), h_in.size(2) * s, h_in.size(3) * s);
  const at::Tensor h = h_in.contiguous();
  const int64_t N = h.size(0), Ci = h.size(1);
  auto [gu, grad_b] = MDRN_PASS(unshuffle_sum, h, grad.contiguous(), s);
  const at::Tensor w2 = w.reshape({w.size(0), Ci});
  const at::Tensor hv = h.view({N, Ci, -1});
  const at::Tensor grad_h = batched_mm(w2.t(), gu).view_as(h);
  const at::Tensor grad_w = at::bmm(gu, hv.transpose(1, 2)).sum(0).view_as(w);
  return {grad_h, grad_w, grad_b};
}

TORCH_LIBRARY_FRAGMENT(mdrn_fast, m) {
  m.def("reconstruct(Tensor h, Tensor weight, Tensor bias, int scale) -> Tensor");
  m.def("reconstruct_backward(Tensor grad, Tensor h, Tensor weight, int scale) -> (Tensor, Tensor, Tensor)");
}

MDRN_IMPL(m.impl("reconstruct", &reconstruct); m.impl("reconstruct_backward", &reconstruct_backward);)

}  // namespace mdrn_fast
