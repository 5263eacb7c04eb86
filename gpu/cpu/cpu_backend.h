// The CPU backend: OpenBLAS sgemm for every product plus simple loops, all split
// over one small thread pool. It is the readable reference the CUDA backend must match.
// Bit-deterministic whatever the thread count: each output element is computed by
// one thread and every reduction runs in a fixed order.
#pragma once

#include <memory>

#include "gpu/backend.h"

namespace sy::gpu {

// num_threads 0 = hardware concurrency. Sets OpenBLAS's (process-wide) thread count
// to 1: the backend's own threads share out every product in fixed blocks.
std::unique_ptr<Backend> CreateCpuBackend(const BackendOptions& options = {});

}  // namespace sy::gpu
