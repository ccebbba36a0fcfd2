// The attention family's passes (csrc/attention.cpp, csrc/cuda/attention.cu).
#pragma once
#include "../passes.h"

MDRN_DECLARE_PASSES(
  // out = x + f * a[n, c]
  at::Tensor scale_add(const at::Tensor& x, const at::Tensor& f, const at::Tensor& a);
  // [N, C] sums over HW of g * f
  at::Tensor plane_sums(const at::Tensor& g, const at::Tensor& f);
  // the same for channels-last g and f
  at::Tensor column_sums(const at::Tensor& g, const at::Tensor& f);
  // g * a[n, c] + d[n, c]
  at::Tensor scale_shift(const at::Tensor& g, const at::Tensor& a, const at::Tensor& d);
)
