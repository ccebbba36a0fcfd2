// The CPU passes of the distill family, declared in csrc/passes/distill.h (the op, its checks and schema:
// csrc/distill.cpp; the same passes on CUDA: csrc/cuda/distill.cu).
#include "../common.h"
#include "../passes/distill.h"

namespace mdrn_fast {

namespace cpu {

// Sum of |a - b| or (a - b)^2 over [lo, hi), in SIMD lanes (lane_sum).
template <bool kSquare, typename scalar_t, typename acc_t = at::opmath_type<scalar_t>>
static acc_t lp_chunk(const scalar_t* a, const scalar_t* b, int64_t lo, int64_t hi) {
  return lane_sum<acc_t>(lo, hi, [&](int64_t i) {
    const acc_t d = static_cast<acc_t>(a[i]) - static_cast<acc_t>(b[i]);
    return kSquare ? d * d : std::abs(d);
  });
}

at::Tensor lp_partials(const at::Tensor& a, const at::Tensor& b, bool square) {
  const int64_t total = a.numel(), chunks = (total + kLpChunk - 1) / kLpChunk;
  at::Tensor out = at::empty({chunks}, a.options().dtype(at::toOpMathType(a.scalar_type())));
  MDRN_DISPATCH(a.scalar_type(), "lp_partials_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* ap = a.const_data_ptr<scalar_t>();
    const scalar_t* bp = b.const_data_ptr<scalar_t>();
    acc_t* op = out.mutable_data_ptr<acc_t>();
    at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        const int64_t lo = c * kLpChunk, hi = std::min(total, lo + kLpChunk);
        op[c] = square ? lp_chunk<true>(ap, bp, lo, hi) : lp_chunk<false>(ap, bp, lo, hi);
      }
    });
  });
  return out;
}

at::Tensor lp_backward(const at::Tensor& grad, const at::Tensor& a, const at::Tensor& b, bool square) {
  at::Tensor out = at::empty_like(a);
  const int64_t total = a.numel();
  MDRN_DISPATCH(a.scalar_type(), "lp_backward_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const acc_t scale = grad.item<acc_t>() / static_cast<acc_t>(total);
    const scalar_t* ap = a.const_data_ptr<scalar_t>();
    const scalar_t* bp = b.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, total, 16384, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const acc_t d = static_cast<acc_t>(ap[i]) - static_cast<acc_t>(bp[i]);
        const acc_t g = square ? 2 * d : static_cast<acc_t>((d > 0) - (d < 0));
        op[i] = static_cast<scalar_t>(scale * g);
      }
    });
  });
  return out;
}

at::Tensor channel_energy(const at::Tensor& f) {
  const int64_t N = f.size(0), C = f.size(1), HW = f.numel() / (N * C);
  constexpr int64_t kSpan = 256;  // positions per task: the accumulators stay in registers / L1
  at::Tensor out = at::empty({N, HW}, f.options().dtype(at::toOpMathType(f.scalar_type())));
  MDRN_DISPATCH(f.scalar_type(), "channel_energy_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* fp = f.const_data_ptr<scalar_t>();
    acc_t* op = out.mutable_data_ptr<acc_t>();
    const int64_t spans = (HW + kSpan - 1) / kSpan;
    at::parallel_for(0, N * spans, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const int64_t n = t / spans, p0 = (t % spans) * kSpan, len = std::min(kSpan, HW - p0);
        acc_t acc[kSpan] = {};
        for (int64_t c = 0; c < C; ++c) {
          const scalar_t* row = fp + (n * C + c) * HW + p0;
          for (int64_t j = 0; j < len; ++j) acc[j] += static_cast<acc_t>(row[j]) * static_cast<acc_t>(row[j]);
        }
        for (int64_t j = 0; j < len; ++j) op[n * HW + p0 + j] = acc[j] / static_cast<acc_t>(C);
      }
    });
  });
  return out;
}

at::Tensor channel_energy_backward(const at::Tensor& grad, const at::Tensor& f) {
  const int64_t N = f.size(0), C = f.size(1), HW = f.numel() / (N * C);
  at::Tensor out = at::empty_like(f);
  MDRN_DISPATCH(f.scalar_type(), "channel_energy_backward_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const acc_t two_over_c = static_cast<acc_t>(2) / static_cast<acc_t>(C);
    const scalar_t* fp = f.const_data_ptr<scalar_t>();
    const acc_t* gp = grad.const_data_ptr<acc_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, N * C, 1, [&](int64_t begin, int64_t end) {
      for (int64_t plane = begin; plane < end; ++plane) {
        const acc_t* g = gp + (plane / C) * HW;
        for (int64_t j = 0; j < HW; ++j)
          op[plane * HW + j] = static_cast<scalar_t>(static_cast<acc_t>(fp[plane * HW + j]) * g[j] * two_over_c);
      }
    });
  });
  return out;
}

}  // namespace cpu

}  // namespace mdrn_fast
