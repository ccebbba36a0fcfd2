// The sum of the branches' reconstructions, in channels-last memory, for the CPU inference plan
// (mdrn_fast/cpu_plan.py):
//   out[n, h, w, c] = sum over branches k of  (h_k[n, h / s, w / s, :] @ wt_k)[q * C + c] + b_k[q * C + c],
//   s = s_k, q = (h % s) * s + w % s
// i.e. pixel_shuffle(conv1x1(h_k) + b_k, s) summed over k, with the 1x1's s*s*C outputs ordered (i, j, c) (the
// plan orders its composed weights so), so that the C values an output pixel takes from a branch are
// contiguous. Per tile of output rows, each branch's GEMM result stays in L2 and is shuffled and summed from
// there: the output is written once, and no full-resolution 1x1 result ever goes through memory.
#include <numeric>
#include <vector>

#include "common.h"

namespace mdrn_fast {

// One output row from one branch: the s pixels that a low-resolution pixel gives it are s*C contiguous floats in
// both the GEMM result (stride s*s*C) and the output, so the row is `blocks` copies or adds of `len` floats.
MDRN_SIMD static void put_blocks(float* __restrict__ dst, const float* __restrict__ src, const float* __restrict__ bias,
                                 int64_t blocks, int64_t len, int64_t src_stride, bool add) {
  for (int64_t x = 0; x < blocks; ++x) {
    float* d = dst + x * len;
    const float* s = src + x * src_stride;
    if (add) {
      for (int64_t m = 0; m < len; ++m) d[m] += s[m] + bias[m];
    } else {
      for (int64_t m = 0; m < len; ++m) d[m] = s[m] + bias[m];
    }
  }
}

at::Tensor reconstruct_sum(at::TensorList h, at::TensorList wt, at::TensorList bias, at::IntArrayRef scales) {
  const size_t K = h.size();
  TORCH_CHECK(K > 0 && wt.size() == K && bias.size() == K && scales.size() == K,
              "reconstruct_sum: expected one weight, bias and scale per branch, got ", K, " maps, ", wt.size(),
              " weights, ", bias.size(), " biases and ", scales.size(), " scales");
  const at::Tensor& h0 = h[0];
  TORCH_CHECK(h0.dim() == 4 && h0.is_cpu() && h0.scalar_type() == at::kFloat,
              "reconstruct_sum: expected float32 [N, C_in, h, w] CPU maps, got ", h0.scalar_type(), " ", h0.sizes());
  const int64_t N = h0.size(0), Ci = h0.size(1), H = h0.size(2) * scales[0], W = h0.size(3) * scales[0];
  const int64_t C = wt[0].size(1) / (scales[0] * scales[0]);
  int64_t unit = 1;  // output rows that hold whole low-resolution rows of every branch
  std::vector<at::Tensor> rows(K);
  for (size_t k = 0; k < K; ++k) {
    const int64_t s = scales[k];
    TORCH_CHECK(s >= 1 && H % s == 0 && W % s == 0, "reconstruct_sum: ", H, "x", W, " is not a multiple of scale ", s);
    MDRN_CHECK_SAME("h[0]", h0, "a map", h[k]);
    MDRN_CHECK_SHAPE("a map", h[k], N, Ci, H / s, W / s);
    MDRN_CHECK_SAME("h[0]", h0, "a weight", wt[k]);
    MDRN_CHECK_SHAPE("a weight", wt[k], Ci, s * s * C);
    MDRN_CHECK_SAME("h[0]", h0, "a bias", bias[k]);
    MDRN_CHECK_SHAPE("a bias", bias[k], s * s * C);
    TORCH_CHECK(wt[k].is_contiguous() && bias[k].is_contiguous(), "reconstruct_sum: expected contiguous weights");
    unit = std::lcm(unit, s);
    rows[k] = h[k].permute({0, 2, 3, 1}).reshape({N * (H / s) * (W / s), Ci});  // a view of channels-last maps
  }
  at::Tensor out = at::empty({N, C, H, W}, h0.options().memory_format(at::MemoryFormat::ChannelsLast));
  float* op = out.mutable_data_ptr<float>();
  // units of output rows per tile: the branches' GEMM results of a tile (unit*W*C floats each) stay in L2
  const int64_t per_tile = std::max<int64_t>(1, 256 * 1024 / (unit * W * C * 4));
  parallel_tiles(N, H / unit, per_tile, [&](int64_t n, int64_t u0, int64_t nu) {
    const int64_t r0 = u0 * unit, nr = nu * unit;
    std::vector<at::Tensor> y(K);
    for (size_t k = 0; k < K; ++k) {  // this tile's low-resolution rows of branch k, through its 1x1
      const int64_t s = scales[k], lw = W / s;
      y[k] = at::mm(rows[k].narrow(0, (n * (H / s) + r0 / s) * lw, nr / s * lw), wt[k]);
    }
    for (int64_t r = r0; r < r0 + nr; ++r)
      for (size_t k = 0; k < K; ++k) {
        const int64_t s = scales[k], lw = W / s;  // output row r reads sub-row r % s of low-resolution row r / s
        const float* src = y[k].const_data_ptr<float>() + ((r - r0) / s * lw * s + r % s) * s * C;
        const float* b = bias[k].const_data_ptr<float>() + (r % s) * s * C;
        put_blocks(op + ((n * H + r) * W) * C, src, b, lw, s * C, s * s * C, k > 0);
      }
  });
  return out;
}

TORCH_LIBRARY_FRAGMENT(mdrn_fast, m) {
  m.def("reconstruct_sum(Tensor[] h, Tensor[] weight_t, Tensor[] bias, int[] scales) -> Tensor");
}

TORCH_LIBRARY_IMPL(mdrn_fast, CPU, m) { m.impl("reconstruct_sum", &reconstruct_sum); }

}  // namespace mdrn_fast
