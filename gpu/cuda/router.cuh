// Launchers for the Switch router of the CUDA backend: softmax + top-1, capacity
// assignment in token order, load-balancing and z losses, their backward, and
// the dispatch/combine of token rows to and from expert buckets. Semantics of
// gpu/backend.h; every reduction has a fixed order (no atomics).
#pragma once

#include <cstdint>

#include "gpu/cuda/cuda_check.cuh"

namespace sy::gpu::cuda {

// probs (N, E), expert (N), gate (N) from logits (N, E); ties go to the lowest index.
CudaResult LaunchRouterSoftmaxTop1(float* probs, int32_t* expert, float* gate, const float* logits, int N, int E,
                                   cudaStream_t stream);
// row (N), counts (E), kept (E) from expert (N): one thread per expert walks the
// tokens in order, so admission is by token order exactly as on the CPU.
CudaResult LaunchRouterAssign(int32_t* row, int32_t* counts, int32_t* kept, const int32_t* expert, int N, int E,
                              int capacity, cudaStream_t stream);
// losses (2) on the device: [0] load balancing, [1] z-loss.
CudaResult LaunchRouterLosses(float* losses, const float* probs, const float* logits, const int32_t* counts, int N,
                              int E, float alpha, float beta, cudaStream_t stream);
CudaResult LaunchRouterBackward(float* dlogits, const float* dgate, const float* probs, const float* logits,
                                const int32_t* expert, const int32_t* counts, int N, int E, float alpha, float beta,
                                float scale, cudaStream_t stream);
CudaResult LaunchDispatchForward(float* buckets, const float* inp, const int32_t* row, int N, int C,
                                 cudaStream_t stream);
CudaResult LaunchDispatchBackward(float* dinp, const float* dbuckets, const int32_t* row, int N, int C,
                                  cudaStream_t stream);
CudaResult LaunchCombineForward(float* out, const float* buckets, const int32_t* row, const float* gate, int N, int C,
                                cudaStream_t stream);
CudaResult LaunchCombineBackward(float* dbuckets, float* dgate, const float* dout, const float* buckets,
                                 const int32_t* row, const float* gate, int N, int C, cudaStream_t stream);

}  // namespace sy::gpu::cuda
