// FAKD (feature-affinity distillation) without the HW x HW affinity matrices, for CPU and CUDA alike:
// the same tiled algorithm as kernels/distill.py (math there), over tile GEMMs (oneDNN/MKL or cuBLAS).
// Per sample, U = unit columns of F [C, HW]; for each tile P of positions and each tile Q:
//   forward  sum |U_s[:,P]^T U_s[:,Q] - U_t[:,P]^T U_t[:,Q]|
//   backward dU_s[:,P] += U_s[:,Q] G[P,Q]^T,  dU_t[:,P] -= U_t[:,Q] G[P,Q]^T,  G = sign(difference)
// Memory: O(C HW + tile^2), never O(HW^2).
#include "common.h"

namespace mdrn_fast {

constexpr int64_t kTile = 512;
constexpr double kEps = 1e-12;

static void check_fakd(const at::Tensor& fs, const at::Tensor& ft) {
  MDRN_CHECK_FLOAT("fs", fs);
  MDRN_CHECK_DIM("fs", fs, 4);
  MDRN_CHECK_DIM("ft", ft, 4);
  MDRN_CHECK_SAME("fs", fs, "ft", ft);
  TORCH_CHECK(fs.numel() > 0, "fs: expected a non-empty tensor, got shape ", fs.sizes());
  TORCH_CHECK(fs.size(0) == ft.size(0) && fs.size(2) == ft.size(2) && fs.size(3) == ft.size(3),
              "ft: fakd needs the student's batch and spatial size ", fs.sizes(), ", got ", ft.sizes());
}

// (unit columns [N, C, HW], column norms [N, 1, HW]) in the accumulation dtype
static std::tuple<at::Tensor, at::Tensor> units(const at::Tensor& f) {
  const at::Tensor x = f.flatten(2).to(at::toOpMathType(f.scalar_type()));
  const at::Tensor norm = x.norm(2, {1}, true).clamp_min(kEps);
  return {(x / norm).contiguous(), norm};
}

at::Tensor fakd(const at::Tensor& fs, const at::Tensor& ft) {
  check_fakd(fs, ft);
  auto [us, ns] = units(fs);
  auto [ut, nt] = units(ft);
  const int64_t N = us.size(0), HW = us.size(2);
  at::Tensor total = at::zeros({}, us.options());
  for (int64_t n = 0; n < N; ++n) {
    const at::Tensor s = us.select(0, n), t = ut.select(0, n);
    for (int64_t p = 0; p < HW; p += kTile) {
      const int64_t bp = std::min(kTile, HW - p);
      const at::Tensor sp = s.narrow(1, p, bp).t(), tp = t.narrow(1, p, bp).t();
      for (int64_t q = 0; q < HW; q += kTile) {
        const int64_t bq = std::min(kTile, HW - q);
        total += (at::mm(sp, s.narrow(1, q, bq)) - at::mm(tp, t.narrow(1, q, bq))).abs().sum();
      }
    }
  }
  return (total / static_cast<double>(N * HW * HW)).to(fs.scalar_type());
}

std::tuple<at::Tensor, at::Tensor> fakd_backward(const at::Tensor& grad, const at::Tensor& fs, const at::Tensor& ft) {
  check_fakd(fs, ft);
  auto [us, ns] = units(fs);
  auto [ut, nt] = units(ft);
  const int64_t N = us.size(0), HW = us.size(2);
  at::Tensor dus = at::zeros_like(us), dut = at::zeros_like(ut);
  for (int64_t n = 0; n < N; ++n) {
    const at::Tensor s = us.select(0, n), t = ut.select(0, n);
    for (int64_t p = 0; p < HW; p += kTile) {
      const int64_t bp = std::min(kTile, HW - p);
      const at::Tensor sp = s.narrow(1, p, bp).t(), tp = t.narrow(1, p, bp).t();
      at::Tensor ds = dus.select(0, n).narrow(1, p, bp), dt = dut.select(0, n).narrow(1, p, bp);
      for (int64_t q = 0; q < HW; q += kTile) {
        const int64_t bq = std::min(kTile, HW - q);
        const at::Tensor sq = s.narrow(1, q, bq), tq = t.narrow(1, q, bq);
        const at::Tensor g = at::sign(at::mm(sp, sq) - at::mm(tp, tq));  // [bp, bq]
        ds.addmm_(sq, g.t());
        dt.addmm_(tq, g.t(), 1.0, -1.0);
      }
    }
  }
  const at::Tensor scale = grad.to(us.scalar_type()) * (2.0 / static_cast<double>(N * HW * HW));
  auto through_norm = [&](const at::Tensor& du, const at::Tensor& u, const at::Tensor& norm, const at::Tensor& f) {
    const at::Tensor d = du * scale;
    return ((d - u * (u * d).sum(1, true)) / norm).view(f.sizes()).to(f.scalar_type());
  };
  return {through_norm(dus, us, ns, fs), through_norm(dut, ut, nt, ft)};
}

TORCH_LIBRARY_FRAGMENT(mdrn_fast, m) {
  m.def("fakd(Tensor fs, Tensor ft) -> Tensor");
  m.def("fakd_backward(Tensor grad, Tensor fs, Tensor ft) -> (Tensor, Tensor)");
}

MDRN_IMPL(m.impl("fakd", &fakd); m.impl("fakd_backward", &fakd_backward);)

}  // namespace mdrn_fast
