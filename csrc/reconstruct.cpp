// RECONSTRUCT: out = pixel_shuffle(conv1x1(h, W, b), s), W [C*s*s, Ci]:
//   Y = W @ h.view(N, Ci, hw)   (vendor GEMM, written NCHW directly: no transpose)
//   out = shuffle_bias(Y, b)     (bias and the pixel-shuffle scatter in the one store pass)
// Backward: (G, db) = unshuffle_sum(dout) (the adjoint gather, b's gradient in the same pass);
//   dh = W^T G,  dW = sum_n G_n h_n^T.
#include <ATen/Parallel.h>

#include "common.h"
#include "passes.h"

namespace mdrn_fast {
namespace cpu {

at::Tensor shuffle_bias(const at::Tensor& y, const at::Tensor& bias, int64_t s, int64_t h, int64_t w) {
  const int64_t N = y.size(0), C = y.size(1) / (s * s), Ho = h * s, Wo = w * s;
  at::Tensor out = at::empty({N, C, Ho, Wo}, y.options());
  MDRN_DISPATCH(y.scalar_type(), "shuffle_bias_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* yp = y.const_data_ptr<scalar_t>();
    const scalar_t* bp = bias.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, N * C * Ho, 1, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {  // r = (n, c, output row)
        const int64_t row = r % Ho, nc = r / Ho, c = nc % C, hh = row / s, i = row % s;
        for (int64_t j = 0; j < s; ++j) {  // output columns j, j + s, ... come from one channel of Y
          const int64_t k = (c * s + i) * s + j;
          const scalar_t* src = yp + ((nc - c) * s * s + k) * h * w + hh * w;
          const acc_t b = static_cast<acc_t>(bp[k]);
          scalar_t* dst = op + r * Wo + j;
          for (int64_t ww = 0; ww < w; ++ww) dst[ww * s] = static_cast<scalar_t>(static_cast<acc_t>(src[ww]) + b);
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
    scalar_t* bp = grad_b.mutable_data_ptr<scalar_t>();
    for (int64_t k = 0; k < K; ++k) {
      acc_t acc = 0;
      for (int64_t n = 0; n < N; ++n) acc += partial[n * K + k];
      bp[k] = static_cast<scalar_t>(acc);
    }
  });
  return {gu, grad_b};
}

}  // namespace cpu

static void check_reconstruct(const at::Tensor& h, const at::Tensor& w, int64_t s) {
  MDRN_CHECK_FLOAT("h", h);
  MDRN_CHECK_DIM("h", h, 4);
  TORCH_CHECK(h.numel() > 0, "h: expected a non-empty tensor, got shape ", h.sizes());
  TORCH_CHECK(s >= 1, "scale: expected >= 1, got ", s);
  MDRN_CHECK_SAME("h", h, "weight", w);
  TORCH_CHECK(w.size(0) % (s * s) == 0, "weight: output channels ", w.size(0), " are not a multiple of scale**2");
  MDRN_CHECK_SHAPE("weight", w, w.size(0), h.size(1), 1, 1);
}

at::Tensor reconstruct(const at::Tensor& h_in, const at::Tensor& w, const at::Tensor& b, int64_t s) {
  check_reconstruct(h_in, w, s);
  MDRN_CHECK_SAME("h", h_in, "bias", b);
  MDRN_CHECK_SHAPE("bias", b, w.size(0));
  const at::Tensor h = h_in.contiguous();
  const int64_t N = h.size(0), hh = h.size(2), ww = h.size(3);
  const at::Tensor y = batched_mm(w.reshape({w.size(0), -1}), h.view({N, h.size(1), hh * ww}));
  return MDRN_PASS(shuffle_bias, h, y, b.contiguous(), s, hh, ww);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> reconstruct_backward(const at::Tensor& grad, const at::Tensor& h_in,
                                                                    const at::Tensor& w, int64_t s) {
  check_reconstruct(h_in, w, s);
  MDRN_CHECK_SAME("h", h_in, "grad", grad);
  MDRN_CHECK_SHAPE("grad", grad, h_in.size(0), w.size(0) / (s * s), h_in.size(2) * s, h_in.size(3) * s);
  const at::Tensor h = h_in.contiguous();
  const int64_t N = h.size(0), Ci = h.size(1);
  auto [gu, grad_b] = MDRN_PASS(unshuffle_sum, h, grad.contiguous(), s);
  const at::Tensor w2 = w.reshape({w.size(0), Ci});
  const at::Tensor hv = h.view({N, Ci, -1});
  const at::Tensor grad_h = batched_mm(w2.t(), gu).view_as(h);
  const at::Tensor grad_w = at::bmm(gu, hv.transpose(1, 2)).sum(0).view_as(w);
  return {grad_h, grad_w, grad_b};
}

TORCH_LIBRARY_FRAGMENT(mdrn_fast, m) {
  m.def("reconstruct(Tensor h, Tensor weight, Tensor bias, int scale) -> Tensor");
  m.def("reconstruct_backward(Tensor grad, Tensor h, Tensor weight, int scale) -> (Tensor, Tensor, Tensor)");
}

MDRN_IMPL(m.impl("reconstruct", &reconstruct); m.impl("reconstruct_backward", &reconstruct_backward);)

}  // namespace mdrn_fast
