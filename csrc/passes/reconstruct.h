// The reconstruct family's passes (csrc/reconstruct.cpp, csrc/cuda/reconstruct.cu).
#pragma once
#include "../passes.h"

MDRN_DECLARE_PASSES(
  // pixel_shuffle(w2 [C*s*s, Ci] @ h + bias) [N, C, h*s, w*s]: the reconstruct forward
  at::Tensor conv1x1_shuffle(const at::Tensor& h, const at::Tensor& w2, const at::Tensor& bias, int64_t s);
  // the adjoint of pixel_shuffle, and the bias gradient, in one pass: g [N, C, h*s, w*s] ->
  // ([N, C*s*s, h*w], [C*s*s])
  std::tuple<at::Tensor, at::Tensor> unshuffle_sum(const at::Tensor& g, int64_t s);
)
