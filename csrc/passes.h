// The memory passes the fused ops are built from, one CPU and one CUDA implementation each.
// An op (csrc/<family>.cpp) is written once around vendor GEMMs (at::mm: oneDNN/MKL, cuBLAS) and these
// passes (the forward GEMM ops are passes too: on CPU they run tile by tile around the GEMM);
// `MDRN_PASS(name, device_tensor, args...)` picks the device's implementation.
// Each family declares its passes in csrc/passes/<family>.h with MDRN_DECLARE_PASSES; csrc/<family>.cpp
// defines them in namespace cpu, csrc/cuda/<family>.cu in namespace cuda.
// All tensors are NCHW-contiguous, viewed as [N, C, HW] where noted.
#pragma once
#include <ATen/ATen.h>

// Declares the passes given (declarations, commas and all) for the CPU and, when built with it, for CUDA.
#ifdef WITH_CUDA
#define MDRN_DECLARE_PASSES(...)      \
  namespace mdrn_fast {               \
  namespace cpu { __VA_ARGS__ }       \
  namespace cuda { __VA_ARGS__ }      \
  }
#else
#define MDRN_DECLARE_PASSES(...) \
  namespace mdrn_fast {          \
  namespace cpu { __VA_ARGS__ }  \
  }
#endif

namespace mdrn_fast {

#ifdef WITH_CUDA
#define MDRN_PASS(name, like, ...) ((like).is_cuda() ? cuda::name(__VA_ARGS__) : cpu::name(__VA_ARGS__))
#else
[[noreturn]] inline void built_without_cuda() {
  TORCH_CHECK(false, "mdrn_fast._C was built without CUDA kernels; rebuild with nvcc available (see README)");
}
#define MDRN_PASS(name, like, ...) \
  ((like).is_cuda() ? (built_without_cuda(), cpu::name(__VA_ARGS__)) : cpu::name(__VA_ARGS__))
#endif

}  // namespace mdrn_fast
