// The noise family's passes (csrc/noise.cpp, csrc/cuda/noise.cu).
#pragma once
#include "../passes.h"

MDRN_DECLARE_PASSES(
  // x + std[n] * N(0, 1) from Philox4x32-10 keyed by seed, counter = element index / 4
  at::Tensor add_noise(const at::Tensor& x, const at::Tensor& std, int64_t seed, bool clip);
)
