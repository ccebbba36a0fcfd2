// Shared by the CPU and CUDA sources: input checks whose errors name the argument, dtype dispatch,
// and registration of one device-generic op for both dispatch keys.
#pragma once
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/core/LegacyTypeDispatch.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#define MDRN_CHECK_FLOAT(name, t)                                                              \
  TORCH_CHECK((t).is_floating_point(), name ": expected a floating tensor, got ", (t).scalar_type())
#define MDRN_CHECK_DIM(name, t, d) \
  TORCH_CHECK((t).dim() == (d), name ": expected a ", d, "-D tensor, got shape ", (t).sizes())
#define MDRN_CHECK_SAME(a_name, a, b_name, b)                                                     \
  TORCH_CHECK((a).device() == (b).device(), b_name " is on ", (b).device(), " but " a_name " is on ", \
              (a).device());                                                                      \
  TORCH_CHECK((a).scalar_type() == (b).scalar_type(), b_name " has dtype ", (b).scalar_type(),      \
              " but " a_name " has ", (a).scalar_type())
#define MDRN_CHECK_SHAPE(name, t, ...)                                                            \
  TORCH_CHECK((t).sizes() == at::IntArrayRef({__VA_ARGS__}), name ": expected shape ",          \
              at::IntArrayRef({__VA_ARGS__}), ", got ", (t).sizes())

// Hot element-wise loops, compiled also for AVX-512 and AVX2 and picked when the library loads by what the
// machine has (function multiversioning): one build runs at the machine's vector width, as ATen's own kernels
// do. Such a loop lives in its own function; without GCC/Clang on x86-64 Linux it is compiled once, baseline.
#if defined(__x86_64__) && defined(__linux__) && (defined(__clang__) ? __clang_major__ >= 14 : defined(__GNUC__))
#define MDRN_SIMD __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MDRN_SIMD
#endif

// float, double, half, bfloat16
#define MDRN_DISPATCH(type, name, ...) \
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, type, name, __VA_ARGS__)

// Ops are written once, device-generic, over the passes of passes.h; register them for both keys.
#ifdef WITH_CUDA
#define MDRN_IMPL(...)                               \
  TORCH_LIBRARY_IMPL(mdrn_fast, CPU, m) { __VA_ARGS__ } \
  TORCH_LIBRARY_IMPL(mdrn_fast, CUDA, m) { __VA_ARGS__ }
#else
#define MDRN_IMPL(...) TORCH_LIBRARY_IMPL(mdrn_fast, CPU, m) { __VA_ARGS__ }
#endif

namespace mdrn_fast {
// The C++ ops' layout rule: a 4-D tensor that is channels-last and not also NCHW-contiguous (one channel or one
// pixel is both; those keep NCHW) is read in place and its results are written channels-last; anything else is
// computed in NCHW. mdrn_fast/ops/_common.py's keeps_channels_last is the same rule, for the fakes.
inline bool keeps_channels_last(const at::Tensor& t) {
  return t.dim() == 4 && !t.is_contiguous() && t.is_contiguous(at::MemoryFormat::ChannelsLast);
}

// A channels-last [N, C, H, W] tensor as the [N*H*W, C] matrix it is in memory (a view).
inline at::Tensor pixel_rows(const at::Tensor& t) { return t.permute({0, 2, 3, 1}).reshape({-1, t.size(1)}); }

// A channels-last [N, C, H, W] tensor as the [N*H, W, C] batch of image rows it is in memory (a view).
inline at::Tensor image_rows(const at::Tensor& t) {
  return t.permute({0, 2, 3, 1}).reshape({t.size(0) * t.size(2), t.size(3), t.size(1)});
}

inline at::Tensor empty_channels_last(at::IntArrayRef sizes, const at::Tensor& like) {
  return at::empty(sizes, like.options().memory_format(at::MemoryFormat::ChannelsLast));
}

// W [M, K] @ X[n] [K, L] for every n, written straight into [N, M, L] (at::matmul would compute the
// transposed product and copy it back: one extra pass over the output). On CUDA one strided-batched GEMM
// (W's batch stride 0: not copied); on the CPU one GEMM per sample, each multithreaded by ATen.
inline at::Tensor batched_mm(const at::Tensor& w, const at::Tensor& x) {
  at::Tensor out = at::empty({x.size(0), w.size(0), x.size(2)}, x.options());
  if (x.is_cuda()) {
    at::bmm_out(out, w.unsqueeze(0).expand({x.size(0), w.size(0), w.size(1)}), x);
    return out;
  }
  for (int64_t n = 0; n < x.size(0); ++n) {
    at::Tensor out_n = out.select(0, n);
    at::mm_out(out_n, w, x.select(0, n));
  }
  return out;
}

// Sum of term(i) over [lo, hi) in independent lanes, so that the loop vectorizes (one running sum would not:
// float addition is not reassociated), added up in a fixed order. Inlined into its caller's (MDRN_SIMD) target.
template <typename acc_t, typename F>
inline acc_t lane_sum(int64_t lo, int64_t hi, const F& term) {
  constexpr int kLanes = 16;
  acc_t lane[kLanes] = {};
  int64_t i = lo;
  for (; i + kLanes <= hi; i += kLanes)
    for (int k = 0; k < kLanes; ++k) lane[k] += term(i + k);
  acc_t sum = 0;
  for (; i < hi; ++i) sum += term(i);
  for (int k = 0; k < kLanes; ++k) sum += lane[k];
  return sum;
}

// Rows per chunk of the CPU channels-last passes: the unit of parallel work and of their partial sums, a fixed
// partition, so that the sums do not depend on the thread count.
constexpr int64_t kRowsPerChunk = 256;

// out[k] = sum over n of partial[n * K + k], n in order: the end of a reduction done per (n, k) plane in
// parallel, summed over the batch in a fixed order (deterministic whatever the thread count).
template <typename acc_t, typename scalar_t>
inline void sum_over_batch(const acc_t* partial, int64_t N, int64_t K, scalar_t* out) {
  for (int64_t k = 0; k < K; ++k) {
    acc_t acc = 0;
    for (int64_t n = 0; n < N; ++n) acc += partial[n * K + k];
    out[k] = static_cast<scalar_t>(acc);
  }
}

// body(n, l0, len) over column tiles [l0, l0 + len) of every sample, in parallel: the fused CPU ops run a small
// GEMM plus its gather/epilogue per tile, so that each tile's intermediates stay in L2 instead of making whole
// passes through memory. GEMMs inside run single-threaded (ATen does not nest parallel regions). Like the
// kernel calling it, the body dispatches below autograd: worker threads do not inherit that from the caller.
template <typename F>
inline void parallel_tiles(int64_t N, int64_t L, int64_t tile, const F& body) {
  const int64_t tiles = (L + tile - 1) / tile;
  at::parallel_for(0, N * tiles, 1, [&](int64_t begin, int64_t end) {
    const at::AutoDispatchBelowADInplaceOrView guard;
    for (int64_t t = begin; t < end; ++t) {
      const int64_t n = t / tiles, l0 = (t % tiles) * tile;
      body(n, l0, std::min(tile, L - l0));
    }
  });
}
}  // namespace mdrn_fast
