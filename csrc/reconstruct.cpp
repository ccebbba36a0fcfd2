// RECONSTRUCT: out = pixel_shuffle(conv1x1(h, W, b), s), W [C*s*s, Ci]:
//   Y = W @ h.view(N, Ci, hw)   (vendor GEMM, written NCHW directly: no transpose)
//   out = pixel_shuffle(Y + b)   (bias and the pixel-shuffle scatter in the one store pass; on CPU per tile of
//                                 rows, so that Y never makes a trip through memory)
// Backward: (G, db) = unshuffle_sum(dout) (the adjoint gather, b's gradient in the same pass);
//   dh = W^T G,  dW = sum_n G_n h_n^T.
// A channels-last h (keeps_channels_last) takes GEMMs storing through the scatter instead: see
// reconstruct_channels_last.
// This file: the ops (checks, device-generic steps) and their schemas.
// Their passes: csrc/cpu/reconstruct.cpp, csrc/cuda/reconstruct.cu.
#include <algorithm>

#include "common.h"
#include "passes/reconstruct.h"

namespace mdrn_fast {

static void check_reconstruct(const at::Tensor& h, const at::Tensor& w, int64_t s) {
  MDRN_CHECK_FLOAT("h", h);
  MDRN_CHECK_DIM("h", h, 4);
  TORCH_CHECK(h.numel() > 0, "h: expected a non-empty tensor, got shape ", h.sizes());
  TORCH_CHECK(s >= 1, "scale: expected >= 1, got ", s);
  MDRN_CHECK_SAME("h", h, "weight", w);
  TORCH_CHECK(w.size(0) % (s * s) == 0, "weight: output channels ", w.size(0), " are not a multiple of scale**2");
  MDRN_CHECK_SHAPE("weight", w, w.size(0), h.size(1), 1, 1);
}

// The channels-last path (keeps_channels_last(h), on any device): out's rows y*s + i, read as [N*h, w, s*C]
// matrices (contiguous rows s*C apart), are each one GEMM of h's pixel rows [N*h, w, Ci]:
//   out_i = bias_i + h_rows @ Wt_i,   Wt_i [ci, (j, c)] = W[(c*s + i)*s + j, ci],   bias_i [(j, c)] likewise
// so the pixel-shuffle scatter is the GEMM's own store: the bias pattern written first, then s strided-batched
// GEMMs adding into it, and no unshuffled buffer.

// out's rows i of every s x s block of channels-last t [N, C, h*s, w*s] (or of its gradient): [N*h, w, s*C].
static at::Tensor block_row(const at::Tensor& t, int64_t s, int64_t i) {
  const int64_t C = t.size(1), Ho = t.size(2), Wo = t.size(3);
  return t.as_strided({t.size(0) * (Ho / s), Wo / s, s * C}, {s * Wo * C, s * C, 1},
                      t.storage_offset() + i * Wo * C);
}

// W [(c, i, j), ci, 1, 1] as [s(i), Ci, s(j)*C]: Wt_i = [i] (a copy of the small weight).
static at::Tensor weight_rows(const at::Tensor& w, int64_t s) {
  return w.reshape({w.size(0) / (s * s), s, s, w.size(1)}).permute({1, 3, 2, 0}).reshape({s, w.size(1), -1});
}

// A channels-last [N, C, h*s, w*s] map as [N*h, s(i), w, s(j), C] (a view): its s x s blocks by offset.
static at::Tensor blocks(const at::Tensor& t, int64_t s) {
  return t.permute({0, 2, 3, 1}).reshape({t.size(0) * t.size(2) / s, s, t.size(3) / s, s, t.size(1)});
}

static at::Tensor reconstruct_channels_last(const at::Tensor& h, const at::Tensor& w, const at::Tensor& b,
                                            int64_t s) {
  const int64_t N = h.size(0), C = w.size(0) / (s * s);
  const at::Tensor wt = weight_rows(w, s), bt = b.view({C, s, s}).permute({1, 2, 0});  // b as [s(i), s(j), C]
  at::Tensor out = empty_channels_last({N, C, h.size(2) * s, h.size(3) * s}, h);
  blocks(out, s).copy_(bt.unsqueeze(0).unsqueeze(2).expand({N * h.size(2), s, h.size(3), s, C}));
  const at::Tensor h_rows = image_rows(h);
  for (int64_t i = 0; i < s; ++i) block_row(out, s, i).baddbmm_(h_rows, wt[i].expand({h_rows.size(0), -1, -1}));
  return out;
}

// Its backward, in the same views: db = the sum of dout over every block, by offset (i, j) and channel;
//   dh = sum_i dout_i @ Wt_i^T (accumulating strided-batched GEMMs),
//   dWt_i = sum_x h_rows[:, x]^T dout_i[:, x]   (batched over x, whose [N*h, .] slices are single-strided; the
//                                                partials of every i in one buffer, summed over x in one reduction).
static std::tuple<at::Tensor, at::Tensor, at::Tensor> reconstruct_backward_channels_last(const at::Tensor& grad,
                                                                                         const at::Tensor& h,
                                                                                         const at::Tensor& w,
                                                                                         int64_t s) {
  const int64_t Ci = h.size(1), C = w.size(0) / (s * s);
  const auto acc = at::toOpMathType(h.scalar_type());
  const at::Tensor g = grad.contiguous(at::MemoryFormat::ChannelsLast);
  const at::Tensor wt = weight_rows(w, s);
  const at::Tensor grad_b = blocks(g, s).sum({0, 2}, false, acc).permute({2, 0, 1}).reshape({-1});
  at::Tensor grad_h = empty_channels_last(h.sizes(), h);
  at::Tensor grad_h_rows = image_rows(grad_h);
  const at::Tensor h_cols = image_rows(h).transpose(0, 1).transpose(1, 2);  // [w, Ci, N*h]
  at::Tensor per_column = at::empty({s, h.size(3), Ci, s * C}, h.options());  // per (i, x): [Ci, s*C]
  for (int64_t i = 0; i < s; ++i) {
    const at::Tensor g_i = block_row(g, s, i), wt_i = wt[i].t().expand({g_i.size(0), -1, -1});
    if (i == 0)
      at::bmm_out(grad_h_rows, g_i, wt_i);
    else
      grad_h_rows.baddbmm_(g_i, wt_i);
    at::Tensor cols_i = per_column[i];
    at::bmm_out(cols_i, h_cols, g_i.transpose(0, 1));
  }
  // [s(i), Ci, s(j)*C] back to W's [(c, i, j), ci, 1, 1]
  const at::Tensor grad_w = per_column.sum(1, false, acc).view({s, Ci, s, C}).permute({3, 0, 2, 1});
  return {grad_h, grad_w.reshape(w.sizes()).to(h.scalar_type()), grad_b.to(h.scalar_type())};
}

at::Tensor reconstruct(const at::Tensor& h_in, const at::Tensor& w, const at::Tensor& b, int64_t s) {
  check_reconstruct(h_in, w, s);
  MDRN_CHECK_SAME("h", h_in, "bias", b);
  MDRN_CHECK_SHAPE("bias", b, w.size(0));
  if (keeps_channels_last(h_in)) return reconstruct_channels_last(h_in, w, b, s);
  const at::Tensor h = h_in.contiguous();
  return MDRN_PASS(conv1x1_shuffle, h, h, w.reshape({w.size(0), -1}), b.contiguous(), s);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> reconstruct_backward(const at::Tensor& grad, const at::Tensor& h_in,
                                                                    const at::Tensor& w, int64_t s) {
  check_reconstruct(h_in, w, s);
  MDRN_CHECK_SAME("h", h_in, "grad", grad);
  MDRN_CHECK_SHAPE("grad", grad, h_in.size(0), w.size(0) / (s * s), h_in.size(2) * s, h_in.size(3) * s);
  if (keeps_channels_last(h_in)) return reconstruct_backward_channels_last(grad, h_in, w, s);
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
