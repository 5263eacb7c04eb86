// The key of one counter-based random stream, on its own so that CUDA kernels
// (gpu/cuda/philox.cuh) take the very struct the backend interface passes.
#pragma once

#include <cstdint>

#include "common/base/philox.h"

namespace sy::gpu {

// Addresses one counter-based random stream: CounterRng(seed, stream, a, b);
// element i of a tensor draws CounterRng::Uniform(offset + i) (common/base/philox.h).
struct RngKey {
  uint64_t seed = 0;
  RngStream stream = RngStream::kDropout;
  uint32_t a = 0;
  uint32_t b = 0;
  uint64_t offset = 0;
};

}  // namespace sy::gpu
