// Device copy of Philox4x32-10 and CounterRng::Uniform (common/base/philox.h):
// kernels draw exactly the numbers the CPU backend draws for the same key and
// index, so dropout masks and jitter agree across devices.
#pragma once

#include <cstdint>

#include "gpu/rng_key.h"

namespace sy::gpu::cuda {

#ifdef __CUDACC__
// CounterRng::Bits(i): word i & 3 of Philox4x32(seed, {i >> 2, (i >> 34) ^ (stream << 16), a, b}).
__device__ inline uint32_t PhiloxBits(const RngKey& key, uint64_t i) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  uint32_t c0 = static_cast<uint32_t>(i >> 2), c1 = static_cast<uint32_t>(i >> 34) ^ (static_cast<uint32_t>(key.stream) << 16);
  uint32_t c2 = key.a, c3 = key.b;
  uint32_t k0 = static_cast<uint32_t>(key.seed), k1 = static_cast<uint32_t>(key.seed >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint32_t hi0 = __umulhi(kM0, c0), lo0 = kM0 * c0;
    const uint32_t hi1 = __umulhi(kM1, c2), lo1 = kM1 * c2;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += kW0;
    k1 += kW1;
  }
  switch (i & 3) {
    case 0: return c0;
    case 1: return c1;
    case 2: return c2;
    default: return c3;
  }
}

// CounterRng::Uniform(offset + i): [0, 1) with 24 bits of resolution.
__device__ inline float PhiloxUniform(const RngKey& key, uint64_t i) {
  return static_cast<float>(PhiloxBits(key, key.offset + i) >> 8) * (1.0f / 16777216.0f);
}
#endif

}  // namespace sy::gpu::cuda
