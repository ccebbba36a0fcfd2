// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011), the counter-based
// generator behind curand and Triton: the same (seed, counter) gives the same numbers on CPU and GPU.
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define MDRN_HD __host__ __device__ __forceinline__
#else
#define MDRN_HD inline
#endif

namespace mdrn_fast {

struct Philox4 {
  uint32_t v[4];
};

MDRN_HD uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  const uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

// 4 random 32-bit words for counter `ctr` under 64-bit key `seed`.
MDRN_HD Philox4 philox4x32_10(uint64_t ctr, uint64_t seed) {
  uint32_t c0 = static_cast<uint32_t>(ctr), c1 = static_cast<uint32_t>(ctr >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, hi1;
    const uint32_t lo0 = mulhilo(0xD2511F53u, c0, &hi0);
    const uint32_t lo1 = mulhilo(0xCD9E8D57u, c2, &hi1);
    const uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {{c0, c1, c2, c3}};
}

// uniform in (0, 1]: never 0, so log() is finite
MDRN_HD float uint_to_unit(uint32_t u) { return (static_cast<float>(u >> 8) + 1.0f) * (1.0f / 16777216.0f); }

// 4 standard normals (Box-Muller on two pairs) for element group `ctr`
MDRN_HD void normal4(uint64_t ctr, uint64_t seed, float out[4]) {
  const Philox4 r = philox4x32_10(ctr, seed);
  for (int k = 0; k < 2; ++k) {
    const float u1 = uint_to_unit(r.v[2 * k]), u2 = uint_to_unit(r.v[2 * k + 1]);
    const float rad = sqrtf(-2.0f * logf(u1));
    const float th = 6.283185307179586f * u2;
    out[2 * k] = rad * cosf(th);
    out[2 * k + 1] = rad * sinf(th);
  }
}

}  // namespace mdrn_fast
