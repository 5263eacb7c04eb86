// Launchers for the token + position embedding (forward and backward) of the
// CUDA backend; semantics of gpu/backend.h. Backward is deterministic: every
// gradient element is summed by one thread over tokens in order (no atomics).
#pragma once

#include <cstdint>

#include "gpu/cuda/cuda_check.cuh"

namespace sy::gpu::cuda {

// out (B*T, C) = wte[tokens[n]] (V, C) + wpe[n % T] (T, C).
CudaResult LaunchEncoderForward(float* out, const int32_t* tokens, const float* wte, const float* wpe, int B, int T,
                                int C, cudaStream_t stream);
// dwte (V, C) +=, dwpe (T, C) += from dout (B*T, C). V = rows of dwte.
CudaResult LaunchEncoderBackward(float* dwte, float* dwpe, const float* dout, const int32_t* tokens, int B, int T,
                                 int C, int V, cudaStream_t stream);

}  // namespace sy::gpu::cuda
