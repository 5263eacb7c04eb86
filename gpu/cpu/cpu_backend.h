// The CPU backend: OpenBLAS sgemm for every product plus simple loops split over a
// small thread pool. It is the readable reference the CUDA backend must match.
// Bit-deterministic whatever the thread count: each output element is computed by
// one thread and every reduction runs in a fixed order.
#pragma once

#include <memory>

#include "gpu/backend.h"

namespace sy::gpu {

// num_threads 0 = hardware concurrency. Also sets OpenBLAS's (process-wide) thread count.
std::unique_ptr<Backend> CreateCpuBackend(const BackendOptions& options = {});

}  // namespace sy::gpu
