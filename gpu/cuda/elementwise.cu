// Elementwise kernels and their launchers (see elementwise.cuh).
#include "gpu/cuda/elementwise.cuh"

#include "gpu/bf16_bits.h"

namespace sy::gpu::cuda {
namespace {

constexpr int kThreads = 256;
constexpr float kGeluScale = 0.7978845608028654f;  // sqrt(2/pi)

// Blocks for a grid-stride loop over n elements.
unsigned int Blocks(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned int>(blocks < 65536 ? (blocks > 0 ? blocks : 1) : 65536);
}

#define SY_GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); i += static_cast<int64_t>(gridDim.x) * blockDim.x)

__global__ void AddBiasKernel(float* out, const float* bias, int64_t n, int cols) {
  SY_GRID_STRIDE(i, n) out[i] += bias[i % cols];
}

// One thread per column: rows summed in order, in double (as the CPU backend).
__global__ void BiasBackwardKernel(float* dbias, const float* dout, int rows, int cols) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  double acc = 0;
  for (int r = 0; r < rows; ++r) acc += dout[static_cast<int64_t>(r) * cols + c];
  dbias[c] += static_cast<float>(acc);
}

__global__ void AddKernel(float* out, const float* a, const float* b, int64_t n) {
  SY_GRID_STRIDE(i, n) out[i] = a[i] + b[i];
}

__global__ void ScaleKernel(float* x, float s, int64_t n) {
  SY_GRID_STRIDE(i, n) x[i] *= s;
}

__global__ void MultiplyKernel(float* out, const float* a, const float* b, int64_t n) {
  SY_GRID_STRIDE(i, n) out[i] = a[i] * b[i];
}

__global__ void RoundToBf16Kernel(float* x, int64_t n) {
  SY_GRID_STRIDE(i, n) x[i] = __uint_as_float(RoundedBf16Bits(__float_as_uint(x[i])));
}

// GELU(x) = 0.5 x (1 + tanh(u)) = x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3),
// in the sigmoid form of the CPU reference (one exp, no cancellation for large |x|).
__device__ inline float GeluSigmoid(float x) {
  const float u = kGeluScale * (x + 0.044715f * x * x * x);
  return 1.0f / (1.0f + expf(-2.0f * u));
}

__global__ void GeluForwardKernel(float* out, const float* inp, int64_t n) {
  SY_GRID_STRIDE(i, n) out[i] = inp[i] * GeluSigmoid(inp[i]);
}

// d/dx [x * s(2u)] = s + x * 2 s (1 - s) * u'(x). dinp may alias dout.
__global__ void GeluBackwardKernel(float* dinp, const float* inp, const float* dout, int64_t n) {
  SY_GRID_STRIDE(i, n) {
    const float x = inp[i];
    const float sig = GeluSigmoid(x);
    const float du = kGeluScale * (1.0f + 3.0f * 0.044715f * x * x);
    dinp[i] = (sig + 2.0f * x * sig * (1.0f - sig) * du) * dout[i];
  }
}

__global__ void DropoutKernel(float* out, const float* inp, int64_t n, float rate, float keep_scale,
                              RngKey key) {
  SY_GRID_STRIDE(i, n) out[i] = PhiloxUniform(key, static_cast<uint64_t>(i)) >= rate ? inp[i] * keep_scale : 0.0f;
}

__global__ void JitterKernel(float* out, float* noise, const float* inp, int64_t n, float eps, RngKey key) {
  SY_GRID_STRIDE(i, n) {
    noise[i] = 1.0f - eps + 2.0f * eps * PhiloxUniform(key, static_cast<uint64_t>(i));
    out[i] = inp[i] * noise[i];
  }
}

__global__ void AdamWKernel(float* param, float* m, float* v, const float* grad, int64_t n, float beta1,
                            float beta2, float eps, float grad_scale, float step_size, float bc2_sqrt, float decay) {
  SY_GRID_STRIDE(i, n) {
    const float g = grad[i] * grad_scale;
    float p = param[i] * decay;
    const float mi = beta1 * m[i] + (1.0f - beta1) * g;
    const float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = p - step_size * mi / (sqrtf(vi) / bc2_sqrt + eps);
  }
}

}  // namespace

CudaResult LaunchAddBias(float* out, const float* bias, int rows, int cols, cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(rows) * cols;
  if (n <= 0) return {};
  AddBiasKernel<<<Blocks(n), kThreads, 0, stream>>>(out, bias, n, cols);
  return SY_CUDA_LAUNCH_RESULT();
}

CudaResult LaunchBiasBackward(float* dbias, const float* dout, int rows, int cols, cudaStream_t stream) {
  if (cols <= 0) return {};
  BiasBackwardKernel<<<(cols + kThreads - 1) / kThreads, kThreads, 0, stream>>>(dbias, dout, rows, cols);
  return SY_CUDA_LAUNCH_RESULT();
}

CudaResult LaunchAdd(float* out, const float* a, const float* b, int64_t n, cudaStream_t stream) {
  if (n <= 0) return {};
  AddKernel<<<Blocks(n), kThreads, 0, stream>>>(out, a, b, n);
  return SY_CUDA_LAUNCH_RESULT();
}

CudaResult LaunchScale(float* x, float s, int64_t n, cudaStream_t stream) {
  if (n <= 0) return {};
  ScaleKernel<<<Blocks(n), kThreads, 0, stream>>>(x, s, n);
  return SY_CUDA_LAUNCH_RESULT();
}

CudaResult LaunchMultiply(float* out, const float* a, const float* b, int64_t n, cudaStream_t stream) {
  if (n <= 0) return {};
  MultiplyKernel<<<Blocks(n), kThreads, 0, stream>>>(out, a, b, n);
  return SY_CUDA_LAUNCH_RESULT();
}

CudaResult LaunchRoundToBf16(float* x, int64_t n, cudaStream_t stream) {
  if (n <= 0) return {};
  RoundToBf16Kernel<<<Blocks(n), kThreads, 0, stream>>>(x, n);
  return SY_CUDA_LAUNCH_RESULT();
}

CudaResult LaunchGeluForward(float* out, const float* inp, int64_t n, cudaStream_t stream) {
  if (n <= 0) return {};
  GeluForwardKernel<<<Blocks(n), kThreads, 0, stream>>>(out, inp, n);
  return SY_CUDA_LAUNCH_RESULT();
}

CudaResult LaunchGeluBackward(float* dinp, const float* inp, const float* dout, int64_t n, cudaStream_t stream) {
  if (n <= 0) return {};
  GeluBackwardKernel<<<Blocks(n), kThreads, 0, stream>>>(dinp, inp, dout, n);
  return SY_CUDA_LAUNCH_RESULT();
}

CudaResult LaunchDropout(float* out, const float* inp, int64_t n, float rate, const RngKey& key,
                         cudaStream_t stream) {
  if (n <= 0) return {};
  DropoutKernel<<<Blocks(n), kThreads, 0, stream>>>(out, inp, n, rate, 1.0f / (1.0f - rate), key);
  return SY_CUDA_LAUNCH_RESULT();
}

CudaResult LaunchJitter(float* out, float* noise, const float* inp, int64_t n, float eps, const RngKey& key,
                        cudaStream_t stream) {
  if (n <= 0) return {};
  JitterKernel<<<Blocks(n), kThreads, 0, stream>>>(out, noise, inp, n, eps, key);
  return SY_CUDA_LAUNCH_RESULT();
}

CudaResult LaunchAdamW(float* param, float* m, float* v, const float* grad, int64_t n, float beta1, float beta2,
                       float eps, float grad_scale, float step_size, float bc2_sqrt, float decay,
                       cudaStream_t stream) {
  if (n <= 0) return {};
  AdamWKernel<<<Blocks(n), kThreads, 0, stream>>>(param, m, v, grad, n, beta1, beta2, eps, grad_scale, step_size,
                                                  bc2_sqrt, decay);
  return SY_CUDA_LAUNCH_RESULT();
}

}  // namespace sy::gpu::cuda
