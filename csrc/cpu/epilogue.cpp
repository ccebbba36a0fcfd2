// The CPU passes of the epilogue family, declared in csrc/passes/epilogue.h (the op, its checks and schema:
// csrc/epilogue.cpp; the same passes on CUDA: csrc/cuda/epilogue.cu).
#include <ATen/Parallel.h>

#include "../common.h"
#include "../passes/epilogue.h"

namespace mdrn_fast {

namespace cpu {

// One (n, c) plane: dst = lrelu(src + b), branch-free so that it vectorizes: for 0 <= s <= 1, lrelu(v) =
// max(v, s v), for s > 1 min(v, s v).
template <typename scalar_t, typename acc_t = at::opmath_type<scalar_t>>
MDRN_SIMD void bias_lrelu_plane(const scalar_t* __restrict__ src, scalar_t* __restrict__ dst, int64_t n, acc_t b,
                                acc_t s) {
  if (s <= 1) {
    for (int64_t i = 0; i < n; ++i) {
      const acc_t v = static_cast<acc_t>(src[i]) + b;
      dst[i] = static_cast<scalar_t>(std::max(v, v * s));
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const acc_t v = static_cast<acc_t>(src[i]) + b;
      dst[i] = static_cast<scalar_t>(std::min(v, v * s));
    }
  }
}

// One plane of the backward: g_out = g * (out > 0 ? 1 : s) (the mask as a 0/1 factor), returning its sum
// (lane_sum: vectorized, in a fixed order).
template <typename scalar_t, typename acc_t = at::opmath_type<scalar_t>>
MDRN_SIMD acc_t bias_lrelu_backward_plane(const scalar_t* __restrict__ g_in, const scalar_t* __restrict__ o_in,
                                          scalar_t* __restrict__ g_out, int64_t n, acc_t s) {
  return lane_sum<acc_t>(0, n, [&](int64_t i) {
    const acc_t positive = static_cast<acc_t>(static_cast<acc_t>(o_in[i]) > 0);
    const acc_t g = static_cast<acc_t>(g_in[i]) * (s + (1 - s) * positive);
    g_out[i] = static_cast<scalar_t>(g);
    return g;
  });
}

// Channels-last rows [rows, C]: dst[r, c] = lrelu(src[r, c] + b[c]), vectorized across the channels of a row.
template <typename scalar_t, typename acc_t = at::opmath_type<scalar_t>>
MDRN_SIMD void bias_lrelu_rows(const scalar_t* __restrict__ src, scalar_t* __restrict__ dst, int64_t rows, int64_t C,
                               const acc_t* __restrict__ b, acc_t s) {
  for (int64_t r = 0; r < rows; ++r, src += C, dst += C) {
    if (s <= 1) {
      for (int64_t c = 0; c < C; ++c) {
        const acc_t v = static_cast<acc_t>(src[c]) + b[c];
        dst[c] = static_cast<scalar_t>(std::max(v, v * s));
      }
    } else {
      for (int64_t c = 0; c < C; ++c) {
        const acc_t v = static_cast<acc_t>(src[c]) + b[c];
        dst[c] = static_cast<scalar_t>(std::min(v, v * s));
      }
    }
  }
}

// The backward over channels-last rows, adding each column's gradient into col_sum[c] (row by row, in order).
template <typename scalar_t, typename acc_t = at::opmath_type<scalar_t>>
MDRN_SIMD void bias_lrelu_backward_rows(const scalar_t* __restrict__ g_in, const scalar_t* __restrict__ o_in,
                                        scalar_t* __restrict__ g_out, int64_t rows, int64_t C, acc_t s,
                                        acc_t* __restrict__ col_sum) {
  for (int64_t r = 0; r < rows; ++r, g_in += C, o_in += C, g_out += C) {
    for (int64_t c = 0; c < C; ++c) {
      const acc_t positive = static_cast<acc_t>(static_cast<acc_t>(o_in[c]) > 0);
      const acc_t g = static_cast<acc_t>(g_in[c]) * (s + (1 - s) * positive);
      g_out[c] = static_cast<scalar_t>(g);
      col_sum[c] += g;
    }
  }
}

at::Tensor bias_lrelu(const at::Tensor& t, const at::Tensor& bias, double slope, bool channels_last) {
  at::Tensor out = at::empty_like(t);
  const int64_t C = t.size(1), HW = t.numel() / std::max<int64_t>(1, t.size(0) * C), planes = t.size(0) * C;
  MDRN_DISPATCH(t.scalar_type(), "bias_lrelu_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* tp = t.const_data_ptr<scalar_t>();
    const scalar_t* bp = bias.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    const acc_t s = static_cast<acc_t>(slope);
    if (channels_last) {
      const std::vector<acc_t> b(bp, bp + C);
      at::parallel_for(0, planes / C * HW, kRowsPerChunk, [&](int64_t begin, int64_t end) {
        bias_lrelu_rows<scalar_t>(tp + begin * C, op + begin * C, end - begin, C, b.data(), s);
      });
      return;
    }
    at::parallel_for(0, planes, 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p)
        bias_lrelu_plane<scalar_t>(tp + p * HW, op + p * HW, HW, static_cast<acc_t>(bp[p % C]), s);
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> bias_lrelu_backward(const at::Tensor& grad, const at::Tensor& out,
                                                       double slope, bool channels_last) {
  at::Tensor grad_t = at::empty_like(grad);
  const int64_t N = grad.size(0), C = grad.size(1), HW = grad.numel() / std::max<int64_t>(1, N * C);
  const int64_t rows = N * HW, chunks = (rows + kRowsPerChunk - 1) / kRowsPerChunk;
  at::Tensor grad_b = at::empty({C}, grad.options());
  MDRN_DISPATCH(grad.scalar_type(), "bias_lrelu_backward_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* gp = grad.const_data_ptr<scalar_t>();
    const scalar_t* op = out.const_data_ptr<scalar_t>();
    scalar_t* gtp = grad_t.mutable_data_ptr<scalar_t>();
    const acc_t s = static_cast<acc_t>(slope);
    // partial sums over a fixed partition (NCHW: one per (n, c) plane; channels-last: one row of C per chunk of
    // pixel rows), reduced in order below: deterministic whatever the thread count, no atomics
    const int64_t groups = channels_last ? chunks : N;
    std::vector<acc_t> partial(groups * C, acc_t(0));
    if (channels_last) {
      at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
        for (int64_t k = begin; k < end; ++k) {
          const int64_t r0 = k * kRowsPerChunk, n = std::min(kRowsPerChunk, rows - r0);
          bias_lrelu_backward_rows<scalar_t>(gp + r0 * C, op + r0 * C, gtp + r0 * C, n, C, s, partial.data() + k * C);
        }
      });
    } else {
      at::parallel_for(0, N * C, 1, [&](int64_t begin, int64_t end) {
        for (int64_t p = begin; p < end; ++p)
          partial[p] = bias_lrelu_backward_plane<scalar_t>(gp + p * HW, op + p * HW, gtp + p * HW, HW, s);
      });
    }
    sum_over_batch(partial.data(), groups, C, grad_b.mutable_data_ptr<scalar_t>());
  });
  return {grad_t, grad_b};
}

}  // namespace cpu

}  // namespace mdrn_fast
