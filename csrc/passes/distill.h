// The distill family's passes (csrc/distill.cpp, csrc/cuda/distill.cu).
#pragma once
#include "../passes.h"

namespace mdrn_fast {
// Fixed chunking makes the l1 / l2 sums the same from run to run, whatever the thread or block count.
constexpr int64_t kLpChunk = 4096;
}  // namespace mdrn_fast

MDRN_DECLARE_PASSES(
  // per-chunk sums of |a - b| (or (a - b)^2) over fixed chunks of kLpChunk elements, in the opmath dtype
  at::Tensor lp_partials(const at::Tensor& a, const at::Tensor& b, bool square);
  // grad * d|a - b|/da / numel (sign, or 2 (a - b)), grad a 0-d opmath tensor
  at::Tensor lp_backward(const at::Tensor& grad, const at::Tensor& a, const at::Tensor& b, bool square);
  // [N, HW] mean over channels of f^2, in the opmath dtype
  at::Tensor channel_energy(const at::Tensor& f);
  // df = f * grad[n, hw] * 2 / C
  at::Tensor channel_energy_backward(const at::Tensor& grad, const at::Tensor& f);
)
