// The CPU passes of the noise family, declared in csrc/passes/noise.h (the op, its checks and schema:
// csrc/noise.cpp; the same passes on CUDA: csrc/cuda/noise.cu).
//
// The same stream as the CUDA kernel (Philox4x32-10, counter = element index / 4, Box-Muller; csrc/philox.h),
// computed a block of counters at a time so that it vectorizes: Philox's rounds run across the block's lanes,
// and the logarithm and sine/cosine are polynomials (no libm calls, which would keep the loop scalar). They
// agree with libm to a few float ulps, so the CPU and CUDA streams agree to about 1e-6 (tests/test_cpp.py).
#include <ATen/Parallel.h>

#include <c10/util/bit_cast.h>

#include "../common.h"
#include "../passes/noise.h"
#include "../philox.h"

namespace mdrn_fast {

namespace cpu {

constexpr int64_t kLanes = 64;  // counters (groups of 4 normals) per block

// log(u) for a normal float u > 0: u = m 2^e with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(s), s = (m-1)/(m+1),
// |s| <= 0.172, by its series to s^9 (truncation below 1e-9).
static inline float log_positive(float u) {
  const uint32_t bits = c10::bit_cast<uint32_t>(u);
  int32_t e = static_cast<int32_t>(bits >> 23) - 127;
  float m = c10::bit_cast<float>((bits & 0x7fffffu) | 0x3f800000u);  // [1, 2)
  const bool high = m > 1.41421356f;
  m = high ? m * 0.5f : m;
  e += high ? 1 : 0;
  const float s = (m - 1.0f) / (m + 1.0f), s2 = s * s;
  const float p = s * (2.0f + s2 * (0.666666667f + s2 * (0.4f + s2 * (0.285714286f + s2 * 0.222222222f))));
  return static_cast<float>(e) * 0.693147182f + (p + static_cast<float>(e) * -1.90465421e-09f);  // ln 2, hi + lo
}

// sin and cos of 2 pi t for t in [0, 1]: t = q/4 + r/(2 pi), |r| <= pi/4, Taylor to r^9 / r^10 (error < 2e-9),
// then rotated by the quadrant q.
static inline void sincos_2pi(float t, float* s, float* c) {
  const int32_t q = static_cast<int32_t>(4.0f * t + 0.5f);
  const float r = (t - 0.25f * static_cast<float>(q)) * 6.28318531f, r2 = r * r;
  const float sr = r * (1.0f + r2 * (-1.66666667e-1f + r2 * (8.33333333e-3f + r2 * (-1.98412698e-4f +
                                                                                  r2 * 2.75573192e-6f))));
  const float cr = 1.0f + r2 * (-0.5f + r2 * (4.16666667e-2f + r2 * (-1.38888889e-3f + r2 * (2.48015873e-5f +
                                                                                          r2 * -2.75573192e-7f))));
  const int32_t k = q & 3;
  *s = k == 0 ? sr : k == 1 ? cr : k == 2 ? -sr : -cr;
  *c = k == 0 ? cr : k == 1 ? -sr : k == 2 ? -cr : sr;
}

// z[4 * i + k]: the 4 normals of counter first + i, i < kLanes (normal4 of csrc/philox.h, lane by lane)
MDRN_SIMD static void normals_block(uint64_t first, uint64_t seed, float* __restrict__ z) {
  uint32_t c0[kLanes], c1[kLanes], c2[kLanes], c3[kLanes];
  for (int64_t i = 0; i < kLanes; ++i) {
    const uint64_t ctr = first + static_cast<uint64_t>(i);
    c0[i] = static_cast<uint32_t>(ctr);
    c1[i] = static_cast<uint32_t>(ctr >> 32);
    c2[i] = 0;
    c3[i] = 0;
  }
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    for (int64_t i = 0; i < kLanes; ++i) {
      const uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c0[i], p1 = static_cast<uint64_t>(0xCD9E8D57u) * c2[i];
      const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1[i] ^ k0;
      const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3[i] ^ k1;
      c0[i] = n0;
      c1[i] = static_cast<uint32_t>(p1);
      c2[i] = n2;
      c3[i] = static_cast<uint32_t>(p0);
    }
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  for (int64_t i = 0; i < kLanes; ++i) {
    const uint32_t words[4] = {c0[i], c1[i], c2[i], c3[i]};
    for (int k = 0; k < 2; ++k) {
      const float u1 = uint_to_unit(words[2 * k]), u2 = uint_to_unit(words[2 * k + 1]);
      const float rad = std::sqrt(-2.0f * log_positive(u1));
      float s, c;
      sincos_2pi(u2, &s, &c);
      z[4 * i + 2 * k] = rad * c;
      z[4 * i + 2 * k + 1] = rad * s;
    }
  }
}

at::Tensor add_noise(const at::Tensor& x, const at::Tensor& std, int64_t seed, bool clip) {
  at::Tensor out = at::empty_like(x);
  const int64_t total = x.numel(), per_sample = total / x.size(0), block = 4 * kLanes;
  const int64_t blocks = (total + block - 1) / block;
  MDRN_DISPATCH(x.scalar_type(), "add_noise_cpu", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const float* sp = std.const_data_ptr<float>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, blocks, 16, [&](int64_t begin, int64_t end) {
      float z[4 * kLanes];
      for (int64_t b = begin; b < end; ++b) {
        normals_block(static_cast<uint64_t>(b * kLanes), static_cast<uint64_t>(seed), z);
        const int64_t e0 = b * block, e1 = std::min(total, e0 + block);
        for (int64_t e = e0; e < e1;) {  // in runs of one sample (one std)
          const int64_t n = e / per_sample, stop = std::min(e1, (n + 1) * per_sample);
          const float sd = sp[n];
          for (; e < stop; ++e) {
            float v = static_cast<float>(xp[e]) + sd * z[e - e0];
            if (clip) v = std::min(1.0f, std::max(0.0f, v));
            op[e] = static_cast<scalar_t>(v);
          }
        }
      }
    });
  });
  return out;
}

}  // namespace cpu

}  // namespace mdrn_fast
