// The HMDS feature distances (mdrn_fast/distill/losses.py), fused.
//
// l1 / l2: one read of fs and ft for the value (fixed-size chunk sums, so deterministic); the backward reads
// them once more and writes the gradient, instead of storing |fs - ft| or its sign for it.
//
// at: the only full-size work is the channel energy e[n, hw] = mean_c f^2 (one read of f) and, backward,
// df = f * de * 2 / C (one read, one write); the normalization of the [N, HW] maps is left to PyTorch.
//
// fakd, without the HW x HW affinity matrices, for CPU and CUDA alike:
// the same tiled algorithm as kernels/distill.py (math there), over tile GEMMs (oneDNN/MKL or cuBLAS).
// Per sample, U = unit columns of F [C, HW]; for each tile P of positions and each tile Q:
//   forward  sum |U_s[:,P]^T U_s[:,Q] - U_t[:,P]^T U_t[:,Q]|
//   backward dU_s[:,P] += U_s[:,Q] G[P,Q]^T,  dU_t[:,P] -= U_t[:,Q] G[P,Q]^T,  G = sign(difference)
// Memory: O(C HW + tile^2), never O(HW^2).
// This file: the ops (checks, device-generic steps) and their schemas.
// Their passes: csrc/cpu/distill.cpp, csrc/cuda/distill.cu.
#include "common.h"
#include "passes/distill.h"

namespace mdrn_fast {

static void check_pair(const at::Tensor& fs, const at::Tensor& ft) {
  MDRN_CHECK_FLOAT("fs", fs);
  MDRN_CHECK_DIM("fs", fs, 4);
  MDRN_CHECK_DIM("ft", ft, 4);
  MDRN_CHECK_SAME("fs", fs, "ft", ft);
  TORCH_CHECK(fs.numel() > 0, "fs: expected a non-empty tensor, got shape ", fs.sizes());
}

static void check_lp(const at::Tensor& fs, const at::Tensor& ft) {
  check_pair(fs, ft);
  TORCH_CHECK(fs.sizes() == ft.sizes(), "ft: expected the student's shape ", fs.sizes(), ", got ", ft.sizes());
}

at::Tensor lp_distance(const at::Tensor& fs, const at::Tensor& ft, bool square) {
  check_lp(fs, ft);
  const at::Tensor a = fs.contiguous(), b = ft.contiguous();
  const at::Tensor partials = MDRN_PASS(lp_partials, a, a, b, square);
  return (partials.sum() / static_cast<double>(a.numel())).to(fs.scalar_type());
}

at::Tensor lp_distance_backward(const at::Tensor& grad, const at::Tensor& fs, const at::Tensor& ft, bool square) {
  check_lp(fs, ft);
  const at::Tensor a = fs.contiguous(), b = ft.contiguous();
  return MDRN_PASS(lp_backward, a, grad.to(at::toOpMathType(fs.scalar_type())), a, b, square);
}

at::Tensor channel_energy(const at::Tensor& f) {
  MDRN_CHECK_FLOAT("f", f);
  MDRN_CHECK_DIM("f", f, 4);
  TORCH_CHECK(f.numel() > 0, "f: expected a non-empty tensor, got shape ", f.sizes());
  const at::Tensor x = f.contiguous();
  return MDRN_PASS(channel_energy, x, x);
}

at::Tensor channel_energy_backward(const at::Tensor& grad, const at::Tensor& f) {
  MDRN_CHECK_DIM("f", f, 4);
  MDRN_CHECK_SHAPE("grad", grad, f.size(0), f.size(2) * f.size(3));
  TORCH_CHECK(grad.device() == f.device(), "grad is on ", grad.device(), " but f is on ", f.device());
  const at::Tensor x = f.contiguous();
  const at::Tensor g = grad.to(at::toOpMathType(f.scalar_type())).contiguous();
  return MDRN_PASS(channel_energy_backward, x, g, x).view(f.sizes());
}

constexpr int64_t kTile = 512;
constexpr double kEps = 1e-12;

static void check_fakd(const at::Tensor& fs, const at::Tensor& ft) {
  check_pair(fs, ft);
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
  m.def("lp_distance(Tensor fs, Tensor ft, bool square) -> Tensor");
  m.def("lp_distance_backward(Tensor grad, Tensor fs, Tensor ft, bool square) -> Tensor");
  m.def("channel_energy(Tensor f) -> Tensor");
  m.def("channel_energy_backward(Tensor grad, Tensor f) -> Tensor");
  m.def("fakd(Tensor fs, Tensor ft) -> Tensor");
  m.def("fakd_backward(Tensor grad, Tensor fs, Tensor ft) -> (Tensor, Tensor)");
}

MDRN_IMPL(m.impl("lp_distance", &lp_distance); m.impl("lp_distance_backward", &lp_distance_backward);
          m.impl("channel_energy", &channel_energy); m.impl("channel_energy_backward", &channel_energy_backward);
          m.impl("fakd", &fakd); m.impl("fakd_backward", &fakd_backward);)

}  // namespace mdrn_fast
