// Embedding kernels and launchers (see encoder.cuh).
#include "gpu/cuda/encoder.cuh"

namespace sy::gpu::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void EncoderForwardKernel(float* out, const int32_t* tokens, const float* wte, const float* wpe, int T,
                                     int C, int64_t total) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= total) return;
  const int64_t n = i / C;
  const int c = static_cast<int>(i % C);
  out[i] = wte[static_cast<int64_t>(tokens[n]) * C + c] + wpe[(n % T) * C + c];
}

// Thread (v, c) walks all tokens in order and adds the rows of token v.
__global__ void WteBackwardKernel(float* dwte, const float* dout, const int32_t* tokens, int64_t N, int C, int V) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= static_cast<int64_t>(V) * C) return;
  const int v = static_cast<int>(i / C);
  const int c = static_cast<int>(i % C);
  float acc = dwte[i];
  for (int64_t n = 0; n < N; ++n) {
    if (tokens[n] == v) acc += dout[n * C + c];
  }
  dwte[i] = acc;
}

// Thread (t, c) adds position t of every sequence b in order.
__global__ void WpeBackwardKernel(float* dwpe, const float* dout, int B, int T, int C) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= static_cast<int64_t>(T) * C) return;
  float acc = dwpe[i];
  for (int b = 0; b < B; ++b) acc += dout[static_cast<int64_t>(b) * T * C + i];
  dwpe[i] = acc;
}

unsigned int Blocks(int64_t n) { return static_cast<unsigned int>((n + kThreads - 1) / kThreads); }

}  // namespace

CudaResult LaunchEncoderForward(float* out, const int32_t* tokens, const float* wte, const float* wpe, int B, int T,
                                int C, cudaStream_t stream) {
  const int64_t total = static_cast<int64_t>(B) * T * C;
  if (total <= 0) return {};
  EncoderForwardKernel<<<Blocks(total), kThreads, 0, stream>>>(out, tokens, wte, wpe, T, C, total);
  return SY_CUDA_LAUNCH_RESULT();
}

CudaResult LaunchEncoderBackward(float* dwte, float* dwpe, const float* dout, const int32_t* tokens, int B, int T,
                                 int C, int V, cudaStream_t stream) {
  if (static_cast<int64_t>(B) * T * C <= 0) return {};
  WteBackwardKernel<<<Blocks(static_cast<int64_t>(V) * C), kThreads, 0, stream>>>(
      dwte, dout, tokens, static_cast<int64_t>(B) * T, C, V);
  if (CudaResult r = SY_CUDA_LAUNCH_RESULT(); !r.ok()) return r;
  WpeBackwardKernel<<<Blocks(static_cast<int64_t>(T) * C), kThreads, 0, stream>>>(dwpe, dout, B, T, C);
  return SY_CUDA_LAUNCH_RESULT();
}

}  // namespace sy::gpu::cuda
