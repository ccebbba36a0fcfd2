// The CPU passes of the degrade family, declared in csrc/passes/degrade.h (the op, its checks and schema:
// csrc/degrade.cpp; the same passes on CUDA: csrc/cuda/degrade.cu).
#include <algorithm>

#include "../common.h"
#include "../passes/degrade.h"

namespace mdrn_fast {

namespace cpu {

// The patches of output rows [r0, r0 + nr) of sample n, k = (c, i, j):
//   P[k, r*Wo + wo] = x[n, c, (r0+r)*s + i, wo*s + j]
template <typename scalar_t>
static void gather_patches(const scalar_t* xp, scalar_t* pp, int64_t n, int64_t r0, int64_t nr, int64_t C, int64_t H,
                           int64_t W, int64_t s, int64_t Wo) {
  for (int64_t k = 0; k < C * s * s; ++k) {
    const int64_t j = k % s, i = (k / s) % s, c = k / (s * s);
    for (int64_t r = 0; r < nr; ++r) {
      const scalar_t* src = xp + ((n * C + c) * H + (r0 + r) * s + i) * W + j;
      scalar_t* dst = pp + (k * nr + r) * Wo;
      for (int64_t wo = 0; wo < Wo; ++wo) dst[wo] = src[wo * s];
    }
  }
}

// Output rows per tile: the tile's patches, and in the backward its gradient, stay in L2.
static int64_t tile_rows(int64_t K, int64_t Wo, int64_t itemsize) {
  return std::max<int64_t>(1, 256 * 1024 / (K * Wo * itemsize));
}

at::Tensor patch_conv(const at::Tensor& x, const at::Tensor& w2, const at::Tensor& bias, int64_t s, double slope) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), Ho = H / s, Wo = W / s;
  const int64_t Co = w2.size(0), K = C * s * s;
  at::Tensor out = at::empty({N, Co, Ho, Wo}, x.options());
  MDRN_DISPATCH(x.scalar_type(), "patch_conv_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* bp = bias.const_data_ptr<scalar_t>();
    const acc_t sl = static_cast<acc_t>(slope);
    parallel_tiles(N, Ho, tile_rows(K, Wo, x.element_size()), [&](int64_t n, int64_t r0, int64_t nr) {
      at::Tensor p = at::empty({K, nr * Wo}, x.options());
      gather_patches(xp, p.mutable_data_ptr<scalar_t>(), n, r0, nr, C, H, W, s, Wo);
      at::Tensor o = out.select(0, n).view({Co, Ho * Wo}).narrow(1, r0 * Wo, nr * Wo);
      at::mm_out(o, w2, p);  // straight into the output rows (leading dimension Ho*Wo)
      scalar_t* op = o.mutable_data_ptr<scalar_t>();
      for (int64_t co = 0; co < Co; ++co) {  // bias + LeakyReLU in place while the tile is in cache, branch-free
        const acc_t b = static_cast<acc_t>(bp[co]);
        scalar_t* __restrict__ row = op + co * Ho * Wo;
        for (int64_t l = 0; l < nr * Wo; ++l) {
          const acc_t v = static_cast<acc_t>(row[l]) + b;
          row[l] = static_cast<scalar_t>(sl <= 1 ? std::max(v, v * sl) : std::min(v, v * sl));
        }
      }
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> patch_conv_backward(const at::Tensor& grad, const at::Tensor& out,
                                                                   const at::Tensor& x, const at::Tensor& w2,
                                                                   int64_t s, double slope) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), Ho = H / s, Wo = W / s;
  const int64_t Co = w2.size(0), K = C * s * s, rows = tile_rows(K + Co, Wo, x.element_size());
  const int64_t tiles = (Ho + rows - 1) / rows;
  const auto acc_type = at::toOpMathType(x.scalar_type());
  at::Tensor grad_x = at::empty_like(x);
  // one partial dW and db per tile, summed below: deterministic for any number of threads
  at::Tensor partial_w = at::empty({N * tiles, Co, K}, x.options());
  at::Tensor partial_b = at::empty({N * tiles, Co}, x.options().dtype(acc_type));
  const at::Tensor w2t = w2.t();
  MDRN_DISPATCH(x.scalar_type(), "patch_conv_backward_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* gp = grad.const_data_ptr<scalar_t>();
    const scalar_t* op = out.const_data_ptr<scalar_t>();
    scalar_t* gxp = grad_x.mutable_data_ptr<scalar_t>();
    acc_t* pbp = partial_b.mutable_data_ptr<acc_t>();
    const acc_t sl = static_cast<acc_t>(slope);
    parallel_tiles(N, Ho, rows, [&](int64_t n, int64_t r0, int64_t nr) {
      const int64_t t = n * tiles + r0 / rows, len = nr * Wo;
      at::Tensor d = at::empty({Co, len}, x.options());  // D: the gradient through bias + LeakyReLU
      scalar_t* dp = d.mutable_data_ptr<scalar_t>();
      for (int64_t co = 0; co < Co; ++co) {
        const int64_t base = (n * Co + co) * Ho * Wo + r0 * Wo;
        acc_t acc = 0;
        for (int64_t l = 0; l < len; ++l) {  // the mask from the sign of the saved output, as a 0/1 factor
          const acc_t positive = static_cast<acc_t>(static_cast<acc_t>(op[base + l]) > 0);
          const acc_t g = static_cast<acc_t>(gp[base + l]) * (sl + (1 - sl) * positive);
          dp[co * len + l] = static_cast<scalar_t>(g);
          acc += g;
        }
        pbp[t * Co + co] = acc;
      }
      at::Tensor p = at::empty({K, len}, x.options());
      gather_patches(xp, p.mutable_data_ptr<scalar_t>(), n, r0, nr, C, H, W, s, Wo);
      at::Tensor pw = partial_w.select(0, t);
      at::mm_out(pw, d, p.t());
      const at::Tensor dpatch = at::mm(w2t, d);  // [K, len], scattered back into x's layout
      const scalar_t* dpp = dpatch.const_data_ptr<scalar_t>();
      for (int64_t c = 0; c < C; ++c)
        for (int64_t r = 0; r < nr; ++r)
          for (int64_t i = 0; i < s; ++i) {
            scalar_t* dst = gxp + ((n * C + c) * H + (r0 + r) * s + i) * W;
            for (int64_t j = 0; j < s; ++j) {  // column j + s*wo comes from row (c, i, j) of dP
              const scalar_t* src = dpp + ((c * s + i) * s + j) * len + r * Wo;
              for (int64_t wo = 0; wo < Wo; ++wo) dst[wo * s + j] = src[wo];
            }
            std::fill(dst + Wo * s, dst + W, scalar_t(0));  // columns no patch covers get no gradient
          }
    });
  });
  if (Ho * s < H) grad_x.narrow(2, Ho * s, H - Ho * s).zero_();  // nor do the rows below the last patch
  return {grad_x, partial_w.sum(at::IntArrayRef{0}, false, acc_type).to(x.scalar_type()),
          partial_b.sum(0).to(x.scalar_type())};
}

}  // namespace cpu

}  // namespace mdrn_fast
