// FuzzRng: the random choices of one fuzz iteration, drawn in sequence from the
// counter-based Philox generator (common/base/philox.h) keyed by (seed, iteration).
// A failing iteration is reproduced from its printed seed and index alone, on any
// machine, whatever ran before it. A FuzzRng is a small value: one per iteration,
// not shared between threads.
#pragma once

#include <cstdint>

#include "common/base/philox.h"

namespace sy::fuzz {

// The Philox stream fuzzing draws from (apart from the model's named streams).
inline constexpr RngStream kFuzzStream = static_cast<RngStream>(0x46757A);

class FuzzRng {
 public:
  FuzzRng(uint64_t seed, uint64_t iteration)
      : rng_(seed, kFuzzStream, static_cast<uint32_t>(iteration), static_cast<uint32_t>(iteration >> 32)) {}

  uint32_t Bits() { return rng_.Bits(next_++); }
  uint64_t Bits64() { return (static_cast<uint64_t>(Bits()) << 32) | Bits(); }
  // Uniform in [0, n); n must be > 0.
  uint64_t Below(uint64_t n) { return rng_.Below(next_++, n); }
  // True with probability 1/n.
  bool OneIn(uint64_t n) { return Below(n) == 0; }

 private:
  CounterRng rng_;
  uint64_t next_ = 0;
};

}  // namespace sy::fuzz
