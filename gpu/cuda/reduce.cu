// Sum-of-squares kernel and launcher (see reduce.cuh).
#include "gpu/cuda/reduce.cuh"

namespace sy::gpu::cuda {
namespace {

constexpr int kThreads = 256;

// Block c sums chunk c: each thread a fixed strided subset, then a fixed tree.
__global__ void SumSquaresKernel(double* partial, const float* x, int64_t n) {
  __shared__ double acc[kThreads];
  const int64_t begin = blockIdx.x * kSumSquaresChunk;
  const int64_t end = begin + kSumSquaresChunk < n ? begin + kSumSquaresChunk : n;
  double s = 0;
  for (int64_t i = begin + threadIdx.x; i < end; i += kThreads) s += static_cast<double>(x[i]) * x[i];
  acc[threadIdx.x] = s;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half >>= 1) {
    if (threadIdx.x < half) acc[threadIdx.x] += acc[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = acc[0];
}

}  // namespace

CudaResult LaunchSumSquaresPartials(double* partial, const float* x, int64_t n, cudaStream_t stream) {
  if (n <= 0) return {};
  SumSquaresKernel<<<static_cast<unsigned int>(SumSquaresPartials(n)), kThreads, 0, stream>>>(partial, x, n);
  return SY_CUDA_LAUNCH_RESULT();
}

}  // namespace sy::gpu::cuda
