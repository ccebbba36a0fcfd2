// Channel-attention passes on CUDA (math in csrc/attention.cpp): the scale-add-residual store, the
// per-plane reduction of g * f (one block per (n, c) plane), and the df = g * a + d store.
#include "cuda_common.cuh"
#include "../passes/attention.h"

namespace mdrn_fast {
namespace cuda {
namespace {

template <typename scalar_t, typename scale_t>
__global__ void scale_shift_kernel(const scalar_t* __restrict__ g,   // [N*C, HW]
                                   const scalar_t* __restrict__ x,   // [N*C, HW] or null: added as is
                                   const scale_t* __restrict__ a,    // [N*C]
                                   const scale_t* __restrict__ d,    // [N*C] or null
                                   scalar_t* __restrict__ out, int64_t total, int64_t HW) {
  using acc_t = at::opmath_type<scalar_t>;
  MDRN_GRID_LOOP(e, total) {
    const int64_t p = e / HW;
    acc_t v = static_cast<acc_t>(g[e]) * static_cast<acc_t>(a[p]);
    if (x != nullptr) v += static_cast<acc_t>(x[e]);
    if (d != nullptr) v += static_cast<acc_t>(d[p]);
    out[e] = static_cast<scalar_t>(v);
  }
}

template <typename scalar_t>
__global__ void plane_sums_kernel(const scalar_t* __restrict__ g, const scalar_t* __restrict__ f,
                                      at::opmath_type<scalar_t>* __restrict__ out, int64_t HW) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t base = blockIdx.x * HW;
  acc_t acc = 0;
  for (int64_t i = threadIdx.x; i < HW; i += blockDim.x)
    acc += static_cast<acc_t>(g[base + i]) * static_cast<acc_t>(f[base + i]);
  acc = block_sum(acc);
  if (threadIdx.x == 0) out[blockIdx.x] = acc;
}

// Channels-last [N, HW, C]: block (x, y) reduces kRowsPerBlock rows of sample x / chunks into
// chunk_sums[n, x % chunks, c] (a column reduction, cuda_common.cuh); the sum over chunks follows in a fixed order.
template <typename scalar_t, typename index_t>
__global__ void column_sums_kernel(const scalar_t* __restrict__ g, const scalar_t* __restrict__ f,
                                   at::opmath_type<scalar_t>* __restrict__ chunk_sums,  // [N, chunks, C]
                                   index_t HW, index_t C, index_t chunks) {
  using acc_t = at::opmath_type<scalar_t>;
  const int lane = threadIdx.x / kColumns;
  const index_t n = blockIdx.x / chunks, chunk = blockIdx.x % chunks;
  const index_t c = blockIdx.y * kColumns + threadIdx.x % kColumns;
  const index_t r0 = chunk * kRowsPerBlock, r1 = min(HW, static_cast<index_t>(r0 + kRowsPerBlock));
  acc_t acc = 0;
  if (c < C)
    for (index_t r = r0 + lane; r < r1; r += kRowLanes) {
      const index_t i = (n * HW + r) * C + c;
      acc += static_cast<acc_t>(g[i]) * static_cast<acc_t>(f[i]);
    }
  acc = column_sum(acc);
  if (lane == 0 && c < C) chunk_sums[static_cast<int64_t>(blockIdx.x) * C + c] = acc;
}

}  // namespace

at::Tensor column_sums(const at::Tensor& g, const at::Tensor& f) {
  const c10::cuda::CUDAGuard guard(g.device());
  const int64_t N = g.size(0), C = g.size(1), HW = g.numel() / (N * C);
  const int64_t chunks = (HW + kRowsPerBlock - 1) / kRowsPerBlock;
  at::Tensor chunk_sums = at::empty({N, chunks, C}, g.options().dtype(at::toOpMathType(g.scalar_type())));
  const dim3 grid(static_cast<unsigned>(N * chunks), static_cast<unsigned>((C + kColumns - 1) / kColumns));
  MDRN_DISPATCH(g.scalar_type(), "column_sums_cuda", [&] {
    MDRN_DISPATCH_INDEX(g.numel(), [&] {
      column_sums_kernel<scalar_t, index_t><<<grid, kThreads, 0, stream()>>>(
          g.const_data_ptr<scalar_t>(), f.const_data_ptr<scalar_t>(),
          chunk_sums.mutable_data_ptr<at::opmath_type<scalar_t>>(), HW, C, chunks);
    });
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return chunk_sums.sum(1);
}

at::Tensor scale_add(const at::Tensor& x, const at::Tensor& f, const at::Tensor& a) {
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor out = at::empty_like(x);
  const int64_t total = x.numel(), HW = total / (x.size(0) * x.size(1));
  MDRN_DISPATCH(x.scalar_type(), "scale_add_cuda", [&] {
    scale_shift_kernel<scalar_t, scalar_t><<<blocks_for(total), kThreads, 0, stream()>>>(
        f.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(), a.const_data_ptr<scalar_t>(), nullptr,
        out.mutable_data_ptr<scalar_t>(), total, HW);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

at::Tensor plane_sums(const at::Tensor& g, const at::Tensor& f) {
  const c10::cuda::CUDAGuard guard(g.device());
  const int64_t planes = g.size(0) * g.size(1), HW = g.numel() / planes;
  at::Tensor out = at::empty({g.size(0), g.size(1)}, g.options().dtype(at::toOpMathType(g.scalar_type())));
  MDRN_DISPATCH(g.scalar_type(), "plane_sums_cuda", [&] {
    plane_sums_kernel<scalar_t><<<static_cast<unsigned>(planes), kThreads, 0, stream()>>>(
        g.const_data_ptr<scalar_t>(), f.const_data_ptr<scalar_t>(), out.mutable_data_ptr<at::opmath_type<scalar_t>>(),
        HW);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

at::Tensor scale_shift(const at::Tensor& g, const at::Tensor& a, const at::Tensor& d) {
  const c10::cuda::CUDAGuard guard(g.device());
  at::Tensor out = at::empty_like(g);
  const int64_t total = g.numel(), HW = total / (g.size(0) * g.size(1));
  MDRN_DISPATCH(g.scalar_type(), "scale_shift_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    scale_shift_kernel<scalar_t, acc_t><<<blocks_for(total), kThreads, 0, stream()>>>(
        g.const_data_ptr<scalar_t>(), nullptr, a.const_data_ptr<acc_t>(), d.const_data_ptr<acc_t>(),
        out.mutable_data_ptr<scalar_t>(), total, HW);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

}  // namespace cuda
}  // namespace mdrn_fast
