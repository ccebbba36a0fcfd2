// The sum of biased pixel shuffles, in channels-last memory, for the CPU inference plan (mdrn_fast/cpu_plan.py):
//   out[n, h, w, c] = sum over parts k of  y_k[n, h / s, w / s, q * C + c] + b_k[q * C + c],
//   s = s_k, q = (h % s) * s + w % s
// Each part is a channels-last [N, s*s*C, H/s, W/s] map whose channels run (i, j, c), the order the plan gives
// its composed 1x1 weights, so that the C values an output pixel takes from a part are contiguous: one pass
// that reads every part once and writes the output once, instead of one shuffle and one add per part (and a
// bias pass per GEMM).
#include <vector>

#include "common.h"

namespace mdrn_fast {

// Row by row: the s pixels that one low-resolution pixel gives an output row are s*C contiguous floats in both
// the part and the output, so each part is one strided copy or add of blocks of s*C floats.
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

at::Tensor shuffle_sum(at::TensorList parts, at::TensorList biases, at::IntArrayRef scales) {
  TORCH_CHECK(!parts.empty() && parts.size() == scales.size() && parts.size() == biases.size(),
              "shuffle_sum: expected one bias and one scale per part, got ", parts.size(), " parts, ", biases.size(),
              " biases and ", scales.size(), " scales");
  const at::Tensor& p0 = parts[0];
  TORCH_CHECK(p0.dim() == 4 && p0.is_cpu() && p0.scalar_type() == at::kFloat,
              "shuffle_sum: expected float32 [N, s*s*C, h, w] CPU tensors, got ", p0.scalar_type(), " ", p0.sizes());
  const int64_t N = p0.size(0), H = p0.size(2) * scales[0], W = p0.size(3) * scales[0];
  const int64_t C = p0.size(1) / (scales[0] * scales[0]);
  std::vector<at::Tensor> nhwc;
  for (size_t k = 0; k < parts.size(); ++k) {
    const int64_t s = scales[k];
    MDRN_CHECK_SAME("parts[0]", p0, "a part", parts[k]);
    MDRN_CHECK_SHAPE("a part", parts[k], N, s * s * C, H / s, W / s);
    MDRN_CHECK_SAME("parts[0]", p0, "a bias", biases[k]);
    MDRN_CHECK_SHAPE("a bias", biases[k], s * s * C);
    TORCH_CHECK(biases[k].is_contiguous(), "shuffle_sum: expected contiguous biases");
    TORCH_CHECK(H % s == 0 && W % s == 0, "shuffle_sum: ", H, "x", W, " is not a multiple of scale ", s);
    nhwc.push_back(parts[k].permute({0, 2, 3, 1}).contiguous());  // a view when the part is channels-last
  }
  at::Tensor out = at::empty({N, C, H, W}, p0.options().memory_format(at::MemoryFormat::ChannelsLast));
  float* op = out.mutable_data_ptr<float>();
  at::parallel_for(0, N * H, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t n = r / H, h = r % H;
      for (size_t k = 0; k < nhwc.size(); ++k) {
        const int64_t s = scales[k];  // output row h reads sub-row h % s of low-resolution row h / s
        const float* row = nhwc[k].const_data_ptr<float>() + ((n * (H / s) + h / s) * (W / s) * s + h % s) * s * C;
        const float* bias = biases[k].const_data_ptr<float>() + (h % s) * s * C;
        put_blocks(op + r * W * C, row, bias, W / s, s * C, s * s * C, k > 0);
      }
    }
  });
  return out;
}

TORCH_LIBRARY_FRAGMENT(mdrn_fast, m) { m.def("shuffle_sum(Tensor[] parts, Tensor[] biases, int[] scales) -> Tensor"); }

TORCH_LIBRARY_IMPL(mdrn_fast, CPU, m) { m.impl("shuffle_sum", &shuffle_sum); }

}  // namespace mdrn_fast
