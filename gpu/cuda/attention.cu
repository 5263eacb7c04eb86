// Causal softmax kernels and launchers (see attention.cuh).
#include "gpu/cuda/attention.cuh"
#include "gpu/cuda/warp_reduce.cuh"

namespace sy::gpu::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = kThreads / 32;

__global__ void CausalSoftmaxForwardKernel(float* att, int64_t rows, int T) {
  const int64_t r = blockIdx.x * static_cast<int64_t>(kWarpsPerBlock) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= rows) return;
  const int t = static_cast<int>(r % T);
  float* row = att + r * T;
  float mx = -INFINITY;
  for (int j = lane; j <= t; j += 32) mx = fmaxf(mx, row[j]);
  mx = WarpMax(mx);
  double sum = 0;
  for (int j = lane; j <= t; j += 32) {
    const float e = expf(row[j] - mx);
    row[j] = e;
    sum += e;
  }
  const float inv = static_cast<float>(1.0 / WarpSum(sum));
  for (int j = lane; j < T; j += 32) row[j] = j <= t ? row[j] * inv : 0.0f;
}

__global__ void CausalSoftmaxBackwardKernel(float* datt, const float* att, int64_t rows, int T, float scale) {
  const int64_t r = blockIdx.x * static_cast<int64_t>(kWarpsPerBlock) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= rows) return;
  const int t = static_cast<int>(r % T);
  const float* arow = att + r * T;
  float* drow = datt + r * T;
  double dot = 0;
  for (int j = lane; j <= t; j += 32) dot += static_cast<double>(arow[j]) * drow[j];
  const float d = static_cast<float>(WarpSum(dot));
  for (int j = lane; j < T; j += 32) drow[j] = j <= t ? scale * arow[j] * (drow[j] - d) : 0.0f;
}

unsigned int RowBlocks(int64_t rows) {
  return static_cast<unsigned int>((rows + kWarpsPerBlock - 1) / kWarpsPerBlock);
}

}  // namespace

CudaResult LaunchCausalSoftmaxForward(float* att, int64_t rows, int T, cudaStream_t stream) {
  if (rows <= 0 || T <= 0) return {};
  CausalSoftmaxForwardKernel<<<RowBlocks(rows), kThreads, 0, stream>>>(att, rows, T);
  return SY_CUDA_LAUNCH_RESULT();
}

CudaResult LaunchCausalSoftmaxBackward(float* datt, const float* att, int64_t rows, int T, float scale,
                                       cudaStream_t stream) {
  if (rows <= 0 || T <= 0) return {};
  CausalSoftmaxBackwardKernel<<<RowBlocks(rows), kThreads, 0, stream>>>(datt, att, rows, T, scale);
  return SY_CUDA_LAUNCH_RESULT();
}

}  // namespace sy::gpu::cuda
