// The epilogue family's passes (csrc/epilogue.cpp, csrc/cuda/epilogue.cu).
#pragma once
#include "../passes.h"

// channels_last: the tensors are channels-last ([N*H*W, C] rows, bias index c = i % C), else NCHW-contiguous.
MDRN_DECLARE_PASSES(
  // out = lrelu(t + bias[c])
  at::Tensor bias_lrelu(const at::Tensor& t, const at::Tensor& bias, double slope, bool channels_last);
  // (g * lrelu'(out), sum over n, hw of it): the mask from the sign of the saved output
  std::tuple<at::Tensor, at::Tensor> bias_lrelu_backward(const at::Tensor& grad, const at::Tensor& out,
                                                         double slope, bool channels_last);
)
