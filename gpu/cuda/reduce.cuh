// Launcher for the sum of squares used by gradient-norm clipping: per-chunk
// partial sums in double with a fixed reduction tree, so the result does not
// depend on scheduling. The host adds the partials in order.
#pragma once

#include <cstdint>

#include "gpu/cuda/cuda_check.cuh"

namespace sy::gpu::cuda {

inline constexpr int64_t kSumSquaresChunk = 8192;  // elements per partial sum

// Number of partial sums LaunchSumSquaresPartials writes for n elements.
inline int64_t SumSquaresPartials(int64_t n) { return (n + kSumSquaresChunk - 1) / kSumSquaresChunk; }

// partial (SumSquaresPartials(n)) doubles = sum of x[i]^2 over each chunk of x (n).
CudaResult LaunchSumSquaresPartials(double* partial, const float* x, int64_t n, cudaStream_t stream);

}  // namespace sy::gpu::cuda
