// DEGRADE: out = lrelu(conv2d(x, W, b, stride=s)), W [Co, C, s, s], as a patch GEMM:
//   P = patches(x) [N, C*s*s, Ho*Wo]  (the s x s blocks, one gather pass)
//   out = bias_lrelu(W.view(Co, C*s*s) @ P, b)   (vendor GEMM, then one epilogue pass)
// On CPU all three run per tile of output rows (P and the GEMM result stay in L2): x read once, out written once.
// Backward (D = dL/d(pre-activation), masked by the sign of the saved output, b's gradient in that pass):
//   dW = sum_n D_n P_n^T,  dP = W^T D,  dx = patches^T(dP)  (a scatter with no overlaps: no atomics)
// P is recomputed in the backward rather than saved: one gather instead of C*s*s*Ho*Wo stored values.
#include <algorithm>

#include "common.h"
#include "passes.h"

namespace mdrn_fast {
namespace cpu {

at::Tensor patch_conv(const at::Tensor& x, const at::Tensor& w2, const at::Tensor& bias, int64_t s, double slope) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), Ho = H / s, Wo = W / s;
  const int64_t Co = w2.size(0), K = C * s * s;
  at::Tensor out = at::empty({N, Co, Ho, Wo}, x.options());
  // output rows per tile: the tile's patches (K x rows*Wo) stay in L2 between the gather and the GEMM
  const int64_t rows = std::max<int64_t>(1, 256 * 1024 / (K * Wo * x.element_size()));
  MDRN_DISPATCH(x.scalar_type(), "patch_conv_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* bp = bias.const_data_ptr<scalar_t>();
    const acc_t sl = static_cast<acc_t>(slope);
    parallel_tiles(N, Ho, rows, [&](int64_t n, int64_t r0, int64_t nr) {
      at::Tensor p = at::empty({K, nr * Wo}, x.options());
      scalar_t* pp = p.mutable_data_ptr<scalar_t>();
      for (int64_t k = 0; k < K; ++k) {  // k = (c, i, j)
        const int64_t j = k % s, i = (k / s) % s, c = k / (s * s);
        for (int64_t r = 0; r < nr; ++r) {
          const scalar_t* src = xp + ((n * C + c) * H + (r0 + r) * s + i) * W + j;
          scalar_t* dst = pp + (k * nr + r) * Wo;
          for (int64_t wo = 0; wo < Wo; ++wo) dst[wo] = src[wo * s];
        }
      }
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

at::Tensor patches(const at::Tensor& x, int64_t s) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), Ho = H / s, Wo = W / s;
  at::Tensor p = at::empty({N, C * s * s, Ho * Wo}, x.options());
  MDRN_DISPATCH(x.scalar_type(), "patches_cpu", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* pp = p.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, N * C * s * s, 1, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {  // r = (n, c, i, j): one row of P
        const int64_t j = r % s, i = (r / s) % s, nc = r / (s * s);
        const scalar_t* src = xp + nc * H * W + i * W + j;
        scalar_t* dst = pp + r * Ho * Wo;
        for (int64_t ho = 0; ho < Ho; ++ho)
          for (int64_t wo = 0; wo < Wo; ++wo) dst[ho * Wo + wo] = src[ho * s * W + wo * s];
      }
    });
  });
  return p;
}

at::Tensor patches_backward(const at::Tensor& p, int64_t s, int64_t H, int64_t W) {
  const int64_t N = p.size(0), C = p.size(1) / (s * s), Ho = H / s, Wo = W / s;
  at::Tensor x = at::empty({N, C, H, W}, p.options());
  MDRN_DISPATCH(p.scalar_type(), "patches_backward_cpu", [&] {
    const scalar_t* pp = p.const_data_ptr<scalar_t>();
    scalar_t* xp = x.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, N * C * H, 1, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {  // r = (n, c, h): one row of x
        const int64_t h = r % H, nc = r / H, ho = h / s, i = h % s;
        scalar_t* dst = xp + r * W;
        const int64_t covered = ho < Ho ? Wo * s : 0;  // columns inside a patch; the rest get no gradient
        for (int64_t j = 0; j < s && covered > 0; ++j) {  // column j + s*wo comes from row (c, i, j) of P
          const scalar_t* src = pp + ((nc * s + i) * s + j) * Ho * Wo + ho * Wo;
          for (int64_t wo = 0; wo < Wo; ++wo) dst[wo * s + j] = src[wo];
        }
        std::fill(dst + covered, dst + W, scalar_t(0));
      }
    });
  });
  return x;
}

}  // namespace cpu

static void check_degrade(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, int64_t s, double slope) {
  MDRN_CHECK_FLOAT("x", x);
  MDRN_CHECK_DIM("x", x, 4);
  TORCH_CHECK(x.numel() > 0, "x: expected a non-empty tensor, got shape ", x.sizes());
  TORCH_CHECK(s >= 1, "scale: expected >= 1, got ", s);
  TORCH_CHECK(x.size(2) >= s && x.size(3) >= s, "x: spatial size ", x.sizes(), " is smaller than scale ", s);
  MDRN_CHECK_SAME("x", x, "weight", w);
  MDRN_CHECK_SAME("x", x, "bias", b);
  MDRN_CHECK_SHAPE("weight", w, w.size(0), x.size(1), s, s);
  MDRN_CHECK_SHAPE("bias", b, w.size(0));
  TORCH_CHECK(slope >= 0, "slope: expected >= 0, got ", slope);
}

at::Tensor degrade(const at::Tensor& x_in, const at::Tensor& w, const at::Tensor& b, int64_t s, double slope) {
  check_degrade(x_in, w, b, s, slope);
  const at::Tensor x = x_in.contiguous();
  return MDRN_PASS(patch_conv, x, x, w.reshape({w.size(0), -1}), b.contiguous(), s, slope);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> degrade_backward(const at::Tensor& grad, const at::Tensor& out,
                                                                const at::Tensor& x_in, const at::Tensor& w,
                                                                int64_t s, double slope) {
  check_degrade(x_in, w, at::empty({w.size(0)}, w.options()), s, slope);
  MDRN_CHECK_SAME("out", out, "grad", grad);
  TORCH_CHECK(grad.sizes() == out.sizes(), "grad: expected shape ", out.sizes(), ", got ", grad.sizes());
  const at::Tensor x = x_in.contiguous();
  const int64_t N = x.size(0), Co = w.size(0);
  auto [d, grad_b] = MDRN_PASS(bias_lrelu_backward, x, grad.contiguous(), out.contiguous(), slope);
  const at::Tensor dv = d.view({N, Co, -1});
  const at::Tensor p = MDRN_PASS(patches, x, x, s);
  const at::Tensor grad_w = at::bmm(dv, p.transpose(1, 2)).sum(0).view_as(w);
  const at::Tensor dp = batched_mm(w.reshape({Co, -1}).t(), dv);
  const at::Tensor grad_x = MDRN_PASS(patches_backward, x, dp, s, x.size(2), x.size(3));
  return {grad_x, grad_w, grad_b};
}

TORCH_LIBRARY_FRAGMENT(mdrn_fast, m) {
  m.def("degrade(Tensor x, Tensor weight, Tensor bias, int scale, float slope) -> Tensor");
  m.def("degrade_backward(Tensor grad, Tensor out, Tensor x, Tensor weight, int scale, float slope)"
        " -> (Tensor, Tensor, Tensor)");
}

MDRN_IMPL(m.impl("degrade", &degrade); m.impl("degrade_backward", &degrade_backward);)

}  // namespace mdrn_fast
