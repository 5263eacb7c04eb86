// Launchers for the elementwise ops of the CUDA backend (bias, add, scale,
// multiply, bf16 rounding, GELU, dropout, jitter, AdamW). Semantics are those of gpu/backend.h
// and the CPU reference (gpu/cpu/cpu_elementwise.cc). Each launcher queues work on
// `stream` and returns the launch result; none synchronises.
#pragma once

#include <cstdint>

#include "gpu/cuda/cuda_check.cuh"
#include "gpu/cuda/philox.cuh"

namespace sy::gpu::cuda {

CudaResult LaunchAddBias(float* out, const float* bias, int rows, int cols, cudaStream_t stream);
CudaResult LaunchBiasBackward(float* dbias, const float* dout, int rows, int cols, cudaStream_t stream);
CudaResult LaunchAdd(float* out, const float* a, const float* b, int64_t n, cudaStream_t stream);
CudaResult LaunchScale(float* x, float s, int64_t n, cudaStream_t stream);
CudaResult LaunchMultiply(float* out, const float* a, const float* b, int64_t n, cudaStream_t stream);
CudaResult LaunchRoundToBf16(float* x, int64_t n, cudaStream_t stream);
CudaResult LaunchGeluForward(float* out, const float* inp, int64_t n, cudaStream_t stream);
CudaResult LaunchGeluBackward(float* dinp, const float* inp, const float* dout, int64_t n, cudaStream_t stream);
// Inverted dropout with rate > 0 (rate 0 is a copy, done by the backend).
CudaResult LaunchDropout(float* out, const float* inp, int64_t n, float rate, const RngKey& key,
                         cudaStream_t stream);
CudaResult LaunchJitter(float* out, float* noise, const float* inp, int64_t n, float eps, const RngKey& key,
                        cudaStream_t stream);
// One AdamW step with host-computed step_size = lr / (1 - beta1^t), bc2_sqrt =
// sqrt(1 - beta2^t) and decay = 1 - lr * weight_decay (as the CPU backend).
CudaResult LaunchAdamW(float* param, float* m, float* v, const float* grad, int64_t n, float beta1, float beta2,
                       float eps, float grad_scale, float step_size, float bc2_sqrt, float decay,
                       cudaStream_t stream);

}  // namespace sy::gpu::cuda
