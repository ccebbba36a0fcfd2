// DEGRADE: out = lrelu(conv2d(x, W, b, stride=s)), W [Co, C, s, s], as a patch GEMM:
//   P = patches(x) [N, C*s*s, Ho*Wo]  (the s x s blocks, one gather pass)
//   out = bias_lrelu(W.view(Co, C*s*s) @ P, b)   (vendor GEMM, then one epilogue pass)
// Backward (D = dL/d(pre-activation), masked by the sign of the saved output, b's gradient in that pass):
//   dW = sum_n D_n P_n^T,  dP = W^T D,  dx = patches^T(dP)  (a scatter with no overlaps: no atomics)
// P is recomputed in the backward rather than saved: one gather instead of C*s*s*Ho*Wo stored values.
// On CPU both directions run per tile of output rows, with P, D and dP living in L2 only: x, out and grad are
// read once, out and dx written once. The CUDA passes (csrc/cuda/degrade.cu) make the steps whole passes.
// A channels-last x (keeps_channels_last) takes GEMMs reading x in place instead: see degrade_channels_last.
// This file: the ops (checks, device-generic steps) and their schemas.
// Their passes: csrc/cpu/degrade.cpp, csrc/cuda/degrade.cu.
#include <algorithm>

#include "common.h"
#include "passes/degrade.h"
#include "passes/epilogue.h"  // the channels-last path's LeakyReLU epilogue

namespace mdrn_fast {

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

// The channels-last path (keeps_channels_last(x), on any device): row i of every s x s patch is, for each output
// row, the [Wo, s*C] matrix x[n, ho*s + i, 0 : Wo*s, :] (contiguous in memory, rows s*C apart), so that
//   pre[n, ho] [Wo, Co] = sum_i x_i[n, ho] @ Wt_i,   Wt_i [(j, c), co] = W[co, c, i, j]
// is s accumulating strided-batched GEMMs reading x in place (no patch buffer), then the channels-last epilogue.
// The batch is (n, ho): one stride when H == Ho*s, else one sample at a time.

// Samples per batched GEMM: all of them when their (n, ho) strides merge, else one.
static int64_t samples_per_gemm(const at::Tensor& x, int64_t s) {
  return x.size(2) == (x.size(2) / s) * s ? x.size(0) : 1;
}

// Row i of the patches of samples [n0, n0 + count) of channels-last x (or of its gradient): [count*Ho, Wo, s*C].
static at::Tensor patch_row(const at::Tensor& x, int64_t s, int64_t i, int64_t n0, int64_t count) {
  const int64_t C = x.size(1), H = x.size(2), W = x.size(3);
  return x.as_strided({count * (H / s), W / s, s * C}, {s * W * C, s * C, 1},
                      x.storage_offset() + (n0 * H + i) * W * C);
}

// W [Co, C, s, s] as [s, s*C, Co]: Wt_i = [i] (a copy of the small weight).
static at::Tensor weight_rows(const at::Tensor& w) {
  return w.permute({2, 3, 1, 0}).reshape({w.size(2), w.size(3) * w.size(1), w.size(0)});
}

static at::Tensor degrade_channels_last(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, int64_t s,
                                        double slope) {
  const int64_t N = x.size(0), Co = w.size(0), Ho = x.size(2) / s, Wo = x.size(3) / s;
  const at::Tensor wt = weight_rows(w);
  const at::Tensor pre = empty_channels_last({N, Co, Ho, Wo}, x);
  const at::Tensor pre_rows = image_rows(pre);
  const int64_t group = samples_per_gemm(x, s);
  for (int64_t n0 = 0; n0 < N; n0 += group) {
    at::Tensor o = pre_rows.narrow(0, n0 * Ho, group * Ho);
    for (int64_t i = 0; i < s; ++i) {
      const at::Tensor a = patch_row(x, s, i, n0, group), wt_i = wt[i].expand({a.size(0), -1, -1});
      if (i == 0)
        at::bmm_out(o, a, wt_i);
      else
        o.baddbmm_(a, wt_i);
    }
  }
  return MDRN_PASS(bias_lrelu, x, pre, b.contiguous(), slope, /*channels_last=*/true);
}

// Its backward: D = the gradient through bias + LeakyReLU (channels-last, db in the same pass), then per i
//   dx_i = D @ Wt_i^T      (a strided-batched GEMM written straight into dx's rows i of the patches)
//   dWt_i = sum_wo x_i[:, wo]^T D[:, wo]   (batched over wo, whose [N*Ho, .] slices are single-strided; the
//                                           partials of every i in one buffer, summed over wo in one reduction)
static std::tuple<at::Tensor, at::Tensor, at::Tensor> degrade_backward_channels_last(
    const at::Tensor& grad, const at::Tensor& out, const at::Tensor& x, const at::Tensor& w, int64_t s,
    double slope) {
  const int64_t N = x.size(0), H = x.size(2), W = x.size(3), Ho = H / s, Wo = W / s;
  const auto layout = at::MemoryFormat::ChannelsLast;
  auto [d, grad_b] = MDRN_PASS(bias_lrelu_backward, x, grad.contiguous(layout), out.contiguous(layout), slope,
                               /*channels_last=*/true);
  const at::Tensor d_rows = image_rows(d), wt = weight_rows(w);
  const bool covered = H == Ho * s && W == Wo * s;  // else rows and columns no patch reads get zeros
  at::Tensor grad_x = covered ? empty_channels_last(x.sizes(), x) : at::zeros_like(x, layout);
  const int64_t group = samples_per_gemm(x, s);
  // per (i, wo): x_i[:, wo]^T D[:, wo] [s*C, Co]; accumulated over the sample groups where there are several
  at::Tensor per_column = group == N ? at::empty({s, Wo, wt.size(1), wt.size(2)}, x.options())
                                     : at::zeros({s, Wo, wt.size(1), wt.size(2)}, x.options());
  for (int64_t i = 0; i < s; ++i) {
    at::Tensor cols_i = per_column[i];
    for (int64_t n0 = 0; n0 < N; n0 += group) {
      const at::Tensor d_i = d_rows.narrow(0, n0 * Ho, group * Ho);
      at::Tensor dx_i = patch_row(grad_x, s, i, n0, group);
      at::bmm_out(dx_i, d_i, wt[i].t().expand({d_i.size(0), -1, -1}));
      const at::Tensor x_cols = patch_row(x, s, i, n0, group).permute({1, 2, 0});
      if (group == N)
        at::bmm_out(cols_i, x_cols, d_i.transpose(0, 1));
      else
        cols_i.baddbmm_(x_cols, d_i.transpose(0, 1));
    }
  }
  // [s(i), s(j)*C, Co] back to W's [Co, C, s(i), s(j)]
  const at::Tensor grad_wt = per_column.sum(1, false, at::toOpMathType(x.scalar_type()));
  const at::Tensor grad_w = grad_wt.view({s, s, x.size(1), w.size(0)}).permute({3, 2, 0, 1});
  return {grad_x, grad_w.contiguous().to(x.scalar_type()), grad_b};
}

at::Tensor degrade(const at::Tensor& x_in, const at::Tensor& w, const at::Tensor& b, int64_t s, double slope) {
  check_degrade(x_in, w, b, s, slope);
  if (keeps_channels_last(x_in)) return degrade_channels_last(x_in, w, b, s, slope);
  const at::Tensor x = x_in.contiguous();
  return MDRN_PASS(patch_conv, x, x, w.reshape({w.size(0), -1}), b.contiguous(), s, slope);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> degrade_backward(const at::Tensor& grad, const at::Tensor& out,
                                                                const at::Tensor& x_in, const at::Tensor& w,
                                                                int64_t s, double slope) {
  check_degrade(x_in, w, at::empty({w.size(0)}, w.options()), s, slope);
  MDRN_CHECK_SAME("out", out, "grad", grad);
  TORCH_CHECK(grad.sizes() == out.sizes(), "grad: expected shape ", out.sizes(), ", got ", grad.sizes());
  if (keeps_channels_last(x_in)) return degrade_backward_channels_last(grad, out, x_in, w, s, slope);
  const at::Tensor x = x_in.contiguous();
  auto [grad_x, grad_w2, grad_b] =
      MDRN_PASS(patch_conv_backward, x, grad.contiguous(), out.contiguous(), x, w.reshape({w.size(0), -1}), s, slope);
  return {grad_x, grad_w2.view_as(w), grad_b};
}

TORCH_LIBRARY_FRAGMENT(mdrn_fast, m) {
  m.def("degrade(Tensor x, Tensor weight, Tensor bias, int scale, float slope) -> Tensor");
  m.def("degrade_backward(Tensor grad, Tensor out, Tensor x, Tensor weight, int scale, float slope)"
        " -> (Tensor, Tensor, Tensor)");
}

MDRN_IMPL(m.impl("degrade", &degrade); m.impl("degrade_backward", &degrade_backward);)

}  // namespace mdrn_fast
