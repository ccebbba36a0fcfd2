// The degrade family's passes (csrc/degrade.cpp, csrc/cuda/degrade.cu).
#pragma once
#include "../passes.h"

MDRN_DECLARE_PASSES(
  // lrelu(w2 [Co, C*s*s] @ patches(x) + bias) [N, Co, Ho, Wo]: the degrade forward
  at::Tensor patch_conv(const at::Tensor& x, const at::Tensor& w2, const at::Tensor& bias, int64_t s,
                        double slope);
  // its backward: (dx, dw2, dbias) from the gradient and the saved output
  std::tuple<at::Tensor, at::Tensor, at::Tensor> patch_conv_backward(const at::Tensor& grad, const at::Tensor& out,
                                                                     const at::Tensor& x, const at::Tensor& w2,
                                                                     int64_t s, double slope);
)
