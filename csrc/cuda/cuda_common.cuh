// CUDA helpers shared by the .cu files: launch geometry, the current stream, a block reduction.
// Include c10/cuda headers, not ATen/cuda/CUDAContext.h: that one pulls in cusparse.h and cublas_v2.h,
// which a CUDA toolkit without the math libraries (as on the CI machine) lacks.
#pragma once
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "../common.h"

namespace mdrn_fast {
namespace cuda {

constexpr int kThreads = 256;

inline unsigned blocks_for(int64_t n) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>((n + kThreads - 1) / kThreads, 1 << 20)));
}

inline cudaStream_t stream() { return c10::cuda::getCurrentCUDAStream(); }

#define MDRN_GRID_LOOP(i, n) \
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

// The same loop over index_t (the type MDRN_DISPATCH_INDEX picked): 32-bit division and modulo per element where
// every index fits, several times cheaper than 64-bit ones.
#define MDRN_GRID_LOOP_T(i, n) \
  for (index_t i = blockIdx.x * (index_t)blockDim.x + threadIdx.x; i < (n); i += (index_t)gridDim.x * blockDim.x)

// Indices of a launch over `n` elements fit int32 (with room for the loop's last stride, at most 2^28 past n).
inline bool fits_int32(int64_t n) { return n <= (int64_t(1) << 31) - (int64_t(1) << 29); }

// Runs the lambda body with `index_t` = int32_t when fits_int32(n), else int64_t.
#define MDRN_DISPATCH_INDEX(n, ...)        \
  if (::mdrn_fast::cuda::fits_int32(n)) {  \
    using index_t = int32_t;               \
    __VA_ARGS__();                         \
  } else {                                 \
    using index_t = int64_t;               \
    __VA_ARGS__();                         \
  }

// Sum of `v` over the block (blockDim.x == kThreads); the result is valid in thread 0.
template <typename acc_t>
__device__ acc_t block_sum(acc_t v) {
  __shared__ acc_t shared[kThreads];
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
    __syncthreads();
  }
  return shared[0];
}

// Column reductions over channels-last rows [rows, C]: block (x, y) takes kRowsPerBlock rows of the columns
// [32 y, 32 y + 32); a warp reads 32 neighbouring channels of one row (coalesced) and the block's 8 warps take
// every 8th row. column_sum then adds the 8 warps' sums of each column in warp order (deterministic, no atomics).
constexpr int kColumns = 32, kRowLanes = kThreads / kColumns;
constexpr int64_t kRowsPerBlock = 256;

// The sum of `v` over the row lanes of this thread's column; valid in lane 0 (threadIdx.x < kColumns).
template <typename acc_t>
__device__ acc_t column_sum(acc_t v) {
  __shared__ acc_t lane_sums[kRowLanes][kColumns];
  const int column = threadIdx.x % kColumns, lane = threadIdx.x / kColumns;
  lane_sums[lane][column] = v;
  __syncthreads();
  if (lane == 0)
    for (int k = 1; k < kRowLanes; ++k) v += lane_sums[k][column];
  return v;
}

}  // namespace cuda
}  // namespace mdrn_fast
