// The CPU passes of the reconstruct family, declared in csrc/passes/reconstruct.h (the op, its checks and schema:
// csrc/reconstruct.cpp; the same passes on CUDA: csrc/cuda/reconstruct.cu).
#include <algorithm>

#include "../common.h"
#include "../passes/reconstruct.h"

namespace mdrn_fast {

namespace cpu {

at::Tensor conv1x1_shuffle(const at::Tensor& h, const at::Tensor& w2, const at::Tensor& bias, int64_t s) {
  const int64_t N = h.size(0), Ci = h.size(1), hh = h.size(2), ww = h.size(3), K = w2.size(0), C = K / (s * s);
  const int64_t Ho = hh * s, Wo = ww * s;
  at::Tensor out = at::empty({N, C, Ho, Wo}, h.options());
  const at::Tensor hv = h.view({N, Ci, hh * ww});
  // low-res rows per tile: the tile's GEMM result (K x rows*ww) stays in L2 until it is scattered
  const int64_t rows = std::max<int64_t>(1, 256 * 1024 / (K * ww * h.element_size()));
  MDRN_DISPATCH(h.scalar_type(), "conv1x1_shuffle_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* bp = bias.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    parallel_tiles(N, hh, rows, [&](int64_t n, int64_t r0, int64_t nr) {
      const at::Tensor y = at::mm(w2, hv.select(0, n).narrow(1, r0 * ww, nr * ww));
      const scalar_t* yp = y.const_data_ptr<scalar_t>();
      for (int64_t k = 0; k < K; ++k) {  // k = (c, i, j): row r of channel k -> output row r*s + i, columns j + s*x
        const int64_t j = k % s, i = (k / s) % s, c = k / (s * s);
        const acc_t b = static_cast<acc_t>(bp[k]);
        for (int64_t r = 0; r < nr; ++r) {
          const scalar_t* src = yp + (k * nr + r) * ww;
          scalar_t* dst = op + ((n * C + c) * Ho + (r0 + r) * s + i) * Wo + j;
          for (int64_t x = 0; x < ww; ++x) dst[x * s] = static_cast<scalar_t>(static_cast<acc_t>(src[x]) + b);
        }
      }
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> unshuffle_sum(const at::Tensor& g, int64_t s) {
  const int64_t N = g.size(0), C = g.size(1), Ho = g.size(2), Wo = g.size(3), h = Ho / s, w = Wo / s, K = C * s * s;
  at::Tensor gu = at::empty({N, K, h * w}, g.options());
  at::Tensor grad_b = at::empty({K}, g.options());
  MDRN_DISPATCH(g.scalar_type(), "unshuffle_sum_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    scalar_t* up = gu.mutable_data_ptr<scalar_t>();
    std::vector<acc_t> partial(N * K);
    at::parallel_for(0, N * K, 1, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {  // r = (n, k), k = (c, i, j)
        const int64_t k = r % K, n = r / K, j = k % s, i = (k / s) % s, c = k / (s * s);
        const scalar_t* src = gp + ((n * C + c) * Ho + i) * Wo + j;
        scalar_t* dst = up + r * h * w;
        acc_t acc = 0;
        for (int64_t hh = 0; hh < h; ++hh)
          for (int64_t ww = 0; ww < w; ++ww) {
            const scalar_t v = src[hh * s * Wo + ww * s];
            dst[hh * w + ww] = v;
            acc += static_cast<acc_t>(v);
          }
        partial[r] = acc;
      }
    });
    sum_over_batch(partial.data(), N, K, grad_b.mutable_data_ptr<scalar_t>());
  });
  return {gu, grad_b};
}

}  // namespace cpu

}  // namespace mdrn_fast
