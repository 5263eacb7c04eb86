// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011).
// Every random draw in Switchyard (data order, dropout masks, router jitter, init)
// is a pure function of (seed, indices), never a stateful per-process stream, so
// results do not depend on which process or thread computes what. Thread-safe:
// everything here is a pure function.
#pragma once

#include <cstdint>
#include <array>

namespace sy {

using PhiloxBlock = std::array<uint32_t, 4>;

// One Philox4x32-10 block: 128 random bits for a 128-bit counter under a 64-bit key.
inline PhiloxBlock Philox4x32(uint64_t key, PhiloxBlock ctr) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kM0) * ctr[0];
    const uint64_t p1 = static_cast<uint64_t>(kM1) * ctr[2];
    ctr = {static_cast<uint32_t>(p1 >> 32) ^ ctr[1] ^ k0, static_cast<uint32_t>(p1),
           static_cast<uint32_t>(p0 >> 32) ^ ctr[3] ^ k1, static_cast<uint32_t>(p0)};
    k0 += kW0;
    k1 += kW1;
  }
  return ctr;
}

// Named streams keep unrelated uses of one seed independent.
enum class RngStream : uint32_t {
  kInit = 1,
  kData = 2,
  kDropout = 3,
  kExpertDropout = 4,
  kRouterJitter = 5,
  kSampling = 6,  // sy-generate: the draw of each generated token
};

// A deterministic generator addressed by (seed, stream, a, b) whose draws are
// indexed by position i: Uniform(i) is the same wherever and whenever it runs.
class CounterRng {
 public:
  CounterRng(uint64_t seed, RngStream stream, uint32_t a = 0, uint32_t b = 0)
      : seed_(seed), stream_(static_cast<uint32_t>(stream)), a_(a), b_(b) {}

  // 32 random bits for index i (four consecutive indices share one Philox block).
  uint32_t Bits(uint64_t i) const {
    const PhiloxBlock r = Philox4x32(seed_, {static_cast<uint32_t>(i >> 2), static_cast<uint32_t>(i >> 34) ^ (stream_ << 16), a_, b_});
    return r[i & 3];
  }
  // Uniform in [0, 1) with 24 bits of resolution.
  float Uniform(uint64_t i) const { return static_cast<float>(Bits(i) >> 8) * (1.0f / 16777216.0f); }
  // Uniform integer in [0, n) (n > 0); the tiny modulo bias is irrelevant for data sampling.
  uint64_t Below(uint64_t i, uint64_t n) const {
    const uint64_t wide = (static_cast<uint64_t>(Bits(2 * i)) << 32) | Bits(2 * i + 1);
    return wide % n;
  }

 private:
  uint64_t seed_;
  uint32_t stream_, a_, b_;
};

}  // namespace sy
