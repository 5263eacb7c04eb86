// Softmax + cross-entropy kernels and launchers (see softmax_ce.cuh).
#include "gpu/cuda/softmax_ce.cuh"
#include "gpu/cuda/warp_reduce.cuh"

namespace sy::gpu::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = kThreads / 32;

__global__ void SoftmaxCrossEntropyForwardKernel(float* losses, float* probs, const float* logits,
                                                 const int32_t* targets, int N, int V) {
  const int n = blockIdx.x * kWarpsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (n >= N) return;
  const float* x = logits + static_cast<int64_t>(n) * V;
  float* p = probs + static_cast<int64_t>(n) * V;
  float mx = -INFINITY;
  for (int j = lane; j < V; j += 32) mx = fmaxf(mx, x[j]);
  mx = WarpMax(mx);
  double sum = 0;
  for (int j = lane; j < V; j += 32) {
    const float e = expf(x[j] - mx);
    p[j] = e;
    sum += e;
  }
  sum = WarpSum(sum);
  const float inv = static_cast<float>(1.0 / sum);
  for (int j = lane; j < V; j += 32) p[j] *= inv;
  if (lane == 0) losses[n] = static_cast<float>(log(sum) + mx - x[targets[n]]);
}

__global__ void SoftmaxCrossEntropyBackwardKernel(float* dlogits, const float* probs, const int32_t* targets,
                                                  float dloss, int64_t total, int V) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= total) return;
  const int64_t n = i / V;
  const int j = static_cast<int>(i % V);
  dlogits[i] = (j == targets[n] ? probs[i] - 1.0f : probs[i]) * dloss;
}

}  // namespace

CudaResult LaunchSoftmaxCrossEntropyForward(float* losses, float* probs, const float* logits, const int32_t* targets,
                                            int N, int V, cudaStream_t stream) {
  if (N <= 0 || V <= 0) return {};
  SoftmaxCrossEntropyForwardKernel<<<(N + kWarpsPerBlock - 1) / kWarpsPerBlock, kThreads, 0, stream>>>(
      losses, probs, logits, targets, N, V);
  return SY_CUDA_LAUNCH_RESULT();
}

CudaResult LaunchSoftmaxCrossEntropyBackward(float* dlogits, const float* probs, const int32_t* targets, float dloss,
                                             int N, int V, cudaStream_t stream) {
  const int64_t total = static_cast<int64_t>(N) * V;
  if (total <= 0) return {};
  SoftmaxCrossEntropyBackwardKernel<<<static_cast<unsigned int>((total + kThreads - 1) / kThreads), kThreads, 0,
                                      stream>>>(dlogits, probs, targets, dloss, total, V);
  return SY_CUDA_LAUNCH_RESULT();
}

}  // namespace sy::gpu::cuda
