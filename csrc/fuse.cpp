// FUSE: out = conv1x1(concat(parts), W, b) with no concat buffer: W = [W_0 | W_1 | ...] by input channels,
//   out = b + sum_i W_i @ parts_i   (vendor GEMMs accumulating into one output)
// Two layouts, chosen by the parts (uses_channels_last; mdrn_fast/ops/fuse.py's fake follows the same rule):
//   channels-last parts, on any device: each part is a [N*H*W, C_i] matrix read in place, and the output a
//     channels-last [N*H*W, Co] one: one plain GEMM per part, the first with the 1-D bias as its addend (no
//     expanded bias buffer; on CUDA ATen can hand that bias to cuBLASLt's epilogue), the rest accumulating.
//     No layout copies around it, no per-sample loop, no batched reduction in the backward.
//   otherwise NCHW out: on CUDA one batched GEMM per part; on CPU tile by tile, so that the output is written
//     once instead of read and written once per part.
// Backward: dparts_i = W_i^T dout (written straight into each part's gradient), dW_i = sum_n dout_n parts_i,n^T,
//   db = sum over n, hw of dout.
#include <algorithm>

#include "common.h"

namespace mdrn_fast {

static void check_fuse(const std::vector<at::Tensor>& parts, const at::Tensor& w) {
  TORCH_CHECK(!parts.empty(), "parts: expected at least one tensor");
  int64_t channels = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const at::Tensor& p = parts[i];
    MDRN_CHECK_FLOAT("parts[i]", p);
    MDRN_CHECK_DIM("parts[i]", p, 4);
    TORCH_CHECK(p.numel() > 0, "parts[", i, "]: expected a non-empty tensor, got shape ", p.sizes());
    MDRN_CHECK_SAME("parts[0]", parts[0], "parts[i]", p);
    TORCH_CHECK(p.size(0) == parts[0].size(0) && p.size(2) == parts[0].size(2) && p.size(3) == parts[0].size(3),
                "parts[", i, "]: shape ", p.sizes(), " does not match parts[0] ", parts[0].sizes());
    channels += p.size(1);
  }
  MDRN_CHECK_SAME("parts[0]", parts[0], "weight", w);
  MDRN_CHECK_SHAPE("weight", w, w.size(0), channels, 1, 1);
}

// [N, C, H, W] as the [N, C, H*W] batch of matrices a batched GEMM reads: a view for NCHW- and for channels-last
// memory (there the matrices are transposed in memory, which cuBLAS reads as they are), a copy otherwise.
static at::Tensor as_batched(const at::Tensor& p) {
  const int64_t N = p.size(0), C = p.size(1), L = p.size(2) * p.size(3);
  if (p.is_contiguous()) return p.view({N, C, L});
  if (p.is_contiguous(at::MemoryFormat::ChannelsLast))
    return p.permute({0, 2, 3, 1}).reshape({N, L, C}).transpose(1, 2);
  return p.contiguous().view({N, C, L});
}

// The channels-last path's rule: keeps_channels_last(parts[0]) and every other part channels-last too.
static bool uses_channels_last(const std::vector<at::Tensor>& parts) {
  if (!keeps_channels_last(parts[0])) return false;
  for (const at::Tensor& p : parts)
    if (!p.is_contiguous(at::MemoryFormat::ChannelsLast)) return false;
  return true;
}

// Columns per tile so that a tile of the output and of every part (rows_total rows) fits in about 512 KiB of L2.
static int64_t tile_columns(int64_t rows_total, int64_t itemsize) {
  return std::max<int64_t>(256, (512 * 1024 / (rows_total * itemsize)) / 64 * 64);
}

at::Tensor fuse(at::TensorList parts_in, const at::Tensor& w, const at::Tensor& b) {
  std::vector<at::Tensor> parts = parts_in.vec();
  check_fuse(parts, w);
  MDRN_CHECK_SAME("weight", w, "bias", b);
  MDRN_CHECK_SHAPE("bias", b, w.size(0));
  const int64_t N = parts[0].size(0), H = parts[0].size(2), W = parts[0].size(3), L = H * W, Co = w.size(0);
  const at::Tensor w2 = w.reshape({Co, -1});
  std::vector<at::Tensor> w_parts;
  int64_t offset = 0;
  for (const at::Tensor& p : parts) {
    w_parts.push_back(w2.narrow(1, offset, p.size(1)));
    offset += p.size(1);
  }
  if (uses_channels_last(parts)) {  // out [N*H*W, Co] = b + sum_i parts_i [N*H*W, C_i] @ W_i^T
    at::Tensor out = empty_channels_last({N, Co, H, W}, parts[0]);
    at::Tensor out_rows = pixel_rows(out);
    at::addmm_out(out_rows, b, pixel_rows(parts[0]), w_parts[0].t());
    for (size_t i = 1; i < parts.size(); ++i) out_rows.addmm_(pixel_rows(parts[i]), w_parts[i].t());
    return out;
  }
  for (at::Tensor& p : parts) p = p.is_cuda() ? as_batched(p) : p.contiguous().view({N, p.size(1), L});
  if (parts[0].is_cuda()) {  // one cuBLAS batched GEMM per part (either layout read in place), accumulating
    at::Tensor out = b.view({1, Co, 1}).expand({N, Co, L}).contiguous();
    for (size_t i = 0; i < parts.size(); ++i)
      out.baddbmm_(w_parts[i].unsqueeze(0).expand({N, Co, w_parts[i].size(1)}), parts[i]);
    return out.view({N, Co, H, W});
  }
  // CPU: per column tile, bias then every part's GEMM accumulate into the output tile while it sits in L2:
  // each part is read once and the output written once.
  at::Tensor out = at::empty({N, Co, L}, parts[0].options());
  const at::Tensor bias_col = b.view({Co, 1});
  parallel_tiles(N, L, tile_columns(Co + offset, out.element_size()), [&](int64_t n, int64_t l0, int64_t len) {
    at::Tensor out_t = out.select(0, n).narrow(1, l0, len);
    out_t.copy_(bias_col.expand({Co, len}));
    for (size_t i = 0; i < parts.size(); ++i) out_t.addmm_(w_parts[i], parts[i].select(0, n).narrow(1, l0, len));
  });
  return out.view({N, Co, H, W});
}

std::tuple<std::vector<at::Tensor>, at::Tensor, at::Tensor> fuse_backward(const at::Tensor& grad_in,
                                                                          at::TensorList parts_in,
                                                                          const at::Tensor& w) {
  const std::vector<at::Tensor> parts = parts_in.vec();
  check_fuse(parts, w);
  MDRN_CHECK_SAME("parts[0]", parts[0], "grad", grad_in);
  const int64_t N = parts[0].size(0), HW = parts[0].size(2) * parts[0].size(3), Co = w.size(0);
  MDRN_CHECK_SHAPE("grad", grad_in, N, Co, parts[0].size(2), parts[0].size(3));
  const at::Tensor w2 = w.reshape({Co, -1});
  std::vector<at::Tensor> grad_parts, grad_w;
  int64_t offset = 0;
  if (uses_channels_last(parts)) {  // dparts_i = dout [N*H*W, Co] @ W_i, dW_i = dout^T parts_i: plain GEMMs
    const at::Tensor g_rows = pixel_rows(grad_in.contiguous(at::MemoryFormat::ChannelsLast));
    for (const at::Tensor& p : parts) {
      const at::Tensor w_i = w2.narrow(1, offset, p.size(1));
      at::Tensor grad_p = empty_channels_last(p.sizes(), p);
      at::Tensor grad_p_rows = pixel_rows(grad_p);
      at::mm_out(grad_p_rows, g_rows, w_i);
      grad_parts.push_back(grad_p);
      grad_w.push_back(at::mm(g_rows.t(), pixel_rows(p)));
      offset += p.size(1);
    }
    return {grad_parts, at::cat(grad_w, 1).view_as(w), g_rows.sum(0)};
  }
  const at::Tensor g = grad_in.is_cuda() ? as_batched(grad_in) : grad_in.contiguous().view({N, Co, HW});
  for (const at::Tensor& p : parts) {
    const int64_t ci = p.size(1);
    grad_parts.push_back(batched_mm(w2.narrow(1, offset, ci).t(), g).view(p.sizes()));
    const at::Tensor pb = p.is_cuda() ? as_batched(p) : p.contiguous().view({N, ci, HW});
    grad_w.push_back(at::bmm(g, pb.transpose(1, 2)).sum(0));
    offset += ci;
  }
  return {grad_parts, at::cat(grad_w, 1).view_as(w), g.sum(at::IntArrayRef{0, 2})};
}

TORCH_LIBRARY_FRAGMENT(mdrn_fast, m) {
  m.def("fuse(Tensor[] parts, Tensor weight, Tensor bias) -> Tensor");
  m.def("fuse_backward(Tensor grad, Tensor[] parts, Tensor weight) -> (Tensor[], Tensor, Tensor)");
}

MDRN_IMPL(m.impl("fuse", &fuse); m.impl("fuse_backward", &fuse_backward);)

}  // namespace mdrn_fast
