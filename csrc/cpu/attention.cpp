// The CPU passes of the attention family, declared in csrc/passes/attention.h (the op, its checks and schema:
// csrc/attention.cpp; the same passes on CUDA: csrc/cuda/attention.cu).
#include <ATen/Parallel.h>

#include "../common.h"
#include "../passes/attention.h"

namespace mdrn_fast {

namespace cpu {

// body(plane, begin, end) for every (n, c) plane of HW elements, in parallel
template <typename F>
static void plane_map(int64_t planes, int64_t HW, F body) {
  at::parallel_for(0, planes, 1, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) body(p, p * HW, (p + 1) * HW);
  });
}

at::Tensor scale_add(const at::Tensor& x, const at::Tensor& f, const at::Tensor& a) {
  at::Tensor out = at::empty_like(x);
  const int64_t planes = x.size(0) * x.size(1), HW = x.numel() / planes;
  MDRN_DISPATCH(x.scalar_type(), "scale_add_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* __restrict__ xp = x.const_data_ptr<scalar_t>();
    const scalar_t* __restrict__ fp = f.const_data_ptr<scalar_t>();
    const scalar_t* __restrict__ ap = a.const_data_ptr<scalar_t>();
    scalar_t* __restrict__ op = out.mutable_data_ptr<scalar_t>();
    plane_map(planes, HW, [&](int64_t p, int64_t begin, int64_t end) {
      const acc_t s = static_cast<acc_t>(ap[p]);
      for (int64_t i = begin; i < end; ++i)
        op[i] = static_cast<scalar_t>(static_cast<acc_t>(xp[i]) + static_cast<acc_t>(fp[i]) * s);
    });
  });
  return out;
}

at::Tensor plane_sums(const at::Tensor& g, const at::Tensor& f) {
  const int64_t planes = g.size(0) * g.size(1), HW = g.numel() / planes;
  at::Tensor out = at::empty({g.size(0), g.size(1)}, g.options().dtype(at::toOpMathType(g.scalar_type())));
  MDRN_DISPATCH(g.scalar_type(), "plane_sums_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t *gp = g.const_data_ptr<scalar_t>(), *fp = f.const_data_ptr<scalar_t>();
    acc_t* op = out.mutable_data_ptr<acc_t>();
    plane_map(planes, HW, [&](int64_t p, int64_t begin, int64_t end) {
      acc_t acc = 0;
      for (int64_t i = begin; i < end; ++i) acc += static_cast<acc_t>(gp[i]) * static_cast<acc_t>(fp[i]);
      op[p] = acc;
    });
  });
  return out;
}

// col_sum[c] += sum over rows of g[r, c] * f[r, c] (channels-last rows), vectorized across the channels
template <typename scalar_t, typename acc_t = at::opmath_type<scalar_t>>
MDRN_SIMD void column_product_sums(const scalar_t* __restrict__ g, const scalar_t* __restrict__ f, int64_t rows,
                                   int64_t C, acc_t* __restrict__ col_sum) {
  for (int64_t r = 0; r < rows; ++r, g += C, f += C)
    for (int64_t c = 0; c < C; ++c) col_sum[c] += static_cast<acc_t>(g[c]) * static_cast<acc_t>(f[c]);
}

at::Tensor column_sums(const at::Tensor& g, const at::Tensor& f) {
  const int64_t N = g.size(0), C = g.size(1), HW = g.numel() / (N * C);
  const int64_t chunks = (HW + kRowsPerChunk - 1) / kRowsPerChunk;
  const auto acc_type = at::toOpMathType(g.scalar_type());
  at::Tensor partial = at::zeros({N, chunks, C}, g.options().dtype(acc_type));
  MDRN_DISPATCH(g.scalar_type(), "column_sums_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t *gp = g.const_data_ptr<scalar_t>(), *fp = f.const_data_ptr<scalar_t>();
    acc_t* pp = partial.mutable_data_ptr<acc_t>();
    at::parallel_for(0, N * chunks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        const int64_t n = k / chunks, r0 = (k % chunks) * kRowsPerChunk, rows = std::min(kRowsPerChunk, HW - r0);
        const int64_t offset = (n * HW + r0) * C;
        column_product_sums<scalar_t>(gp + offset, fp + offset, rows, C, pp + k * C);
      }
    });
  });
  return partial.sum(1);
}

at::Tensor scale_shift(const at::Tensor& g, const at::Tensor& a, const at::Tensor& d) {
  at::Tensor out = at::empty_like(g);
  const int64_t planes = g.size(0) * g.size(1), HW = g.numel() / planes;
  MDRN_DISPATCH(g.scalar_type(), "scale_shift_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* __restrict__ gp = g.const_data_ptr<scalar_t>();
    const acc_t* __restrict__ ap = a.const_data_ptr<acc_t>();
    const acc_t* __restrict__ dp = d.const_data_ptr<acc_t>();
    scalar_t* __restrict__ op = out.mutable_data_ptr<scalar_t>();
    plane_map(planes, HW, [&](int64_t p, int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) op[i] = static_cast<scalar_t>(static_cast<acc_t>(gp[i]) * ap[p] + dp[p]);
    });
  });
  return out;
}

}  // namespace cpu

}  // namespace mdrn_fast
