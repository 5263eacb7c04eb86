// Router, dispatch and combine kernels and launchers (see router.cuh).
#include "gpu/cuda/router.cuh"
#include "gpu/cuda/warp_reduce.cuh"
#include "gpu/softmax_row.h"

namespace sy::gpu::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = kThreads / 32;

unsigned int Blocks(int64_t n, int per_block) { return static_cast<unsigned int>((n + per_block - 1) / per_block); }

__device__ double LogSumExp(const float* x, int n) {
  float mx = x[0];
  for (int j = 1; j < n; ++j) mx = fmaxf(mx, x[j]);
  double sum = 0;
  for (int j = 0; j < n; ++j) sum += exp(static_cast<double>(x[j]) - mx);
  return log(sum) + mx;
}

__global__ void RouterSoftmaxTop1Kernel(float* probs, int32_t* expert, float* gate, const float* logits, int N,
                                        int E) {
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;
  float* p = probs + static_cast<int64_t>(n) * E;
  const int best = NormalizeRowTop1(p, E, ExpShiftedRow(p, logits + static_cast<int64_t>(n) * E, E).sum);
  expert[n] = best;
  gate[n] = p[best];
}

// One block; thread e (strided over experts) owns expert e's tokens. `start`
// (E ints of shared memory) holds each bucket's first row.
__global__ void RouterAssignKernel(int32_t* row, int32_t* counts, int32_t* kept, const int32_t* expert, int N, int E,
                                   int capacity) {
  extern __shared__ int32_t start[];
  for (int e = threadIdx.x; e < E; e += blockDim.x) {
    int32_t count = 0, admitted = 0;
    for (int n = 0; n < N; ++n) {
      if (expert[n] != e) continue;
      ++count;
      row[n] = admitted < capacity ? admitted++ : -1;
    }
    counts[e] = count;
    kept[e] = admitted;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    int32_t offset = 0;
    for (int e = 0; e < E; ++e) {
      start[e] = offset;
      offset += kept[e];
    }
  }
  __syncthreads();
  for (int e = threadIdx.x; e < E; e += blockDim.x) {
    for (int n = 0; n < N; ++n) {
      if (expert[n] == e && row[n] >= 0) row[n] += start[e];
    }
  }
}

// One block: threads sum probability columns (experts) and z terms (tokens) in a
// fixed order; thread 0 combines the partial z sums in order.
__global__ void RouterLossesKernel(float* losses, const float* probs, const float* logits, const int32_t* counts,
                                   int N, int E, float alpha, float beta) {
  __shared__ double lb_part[kThreads];
  __shared__ double z_part[kThreads];
  double lb = 0;
  for (int e = threadIdx.x; e < E; e += blockDim.x) {
    double psum = 0;
    for (int n = 0; n < N; ++n) psum += probs[static_cast<int64_t>(n) * E + e];
    lb += (static_cast<double>(counts[e]) / N) * (psum / N);
  }
  double z = 0;
  for (int n = threadIdx.x; n < N; n += blockDim.x) {
    const double lse = LogSumExp(logits + static_cast<int64_t>(n) * E, E);
    z += lse * lse;
  }
  lb_part[threadIdx.x] = lb;
  z_part[threadIdx.x] = z;
  __syncthreads();
  if (threadIdx.x != 0) return;
  double lb_total = 0, z_total = 0;
  for (int i = 0; i < blockDim.x; ++i) {
    lb_total += lb_part[i];
    z_total += z_part[i];
  }
  losses[0] = static_cast<float>(alpha * E * lb_total);
  losses[1] = static_cast<float>(beta * z_total / N);
}

__global__ void RouterBackwardKernel(float* dlogits, const float* dgate, const float* probs, const float* logits,
                                     const int32_t* expert, const int32_t* counts, int N, int E, float alpha,
                                     float beta, float scale) {
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;
  const float* p = probs + static_cast<int64_t>(n) * E;
  float* d = dlogits + static_cast<int64_t>(n) * E;
  // g[e] = d(lb)/d(probs[n, e]) * scale (+ dgate for the chosen expert), as on the CPU.
  double gp = 0;
  for (int e = 0; e < E; ++e) {
    const float lb_grad = static_cast<float>(static_cast<double>(scale) * alpha * E * counts[e] / N / N);
    const float g = lb_grad + (e == expert[n] ? dgate[n] : 0.0f);
    gp += static_cast<double>(g) * p[e];
  }
  const float zc = static_cast<float>(static_cast<double>(scale) * beta * 2.0 *
                                      LogSumExp(logits + static_cast<int64_t>(n) * E, E) / N);
  for (int e = 0; e < E; ++e) {
    const float lb_grad = static_cast<float>(static_cast<double>(scale) * alpha * E * counts[e] / N / N);
    const float g = lb_grad + (e == expert[n] ? dgate[n] : 0.0f);
    d[e] = p[e] * (g - static_cast<float>(gp)) + zc * p[e];
  }
}

__global__ void DispatchForwardKernel(float* buckets, const float* inp, const int32_t* row, int64_t total, int C) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= total) return;
  const int64_t n = i / C;
  if (row[n] >= 0) buckets[static_cast<int64_t>(row[n]) * C + i % C] = inp[i];
}

__global__ void DispatchBackwardKernel(float* dinp, const float* dbuckets, const int32_t* row, int64_t total, int C) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= total) return;
  const int64_t n = i / C;
  dinp[i] = row[n] >= 0 ? dbuckets[static_cast<int64_t>(row[n]) * C + i % C] : 0.0f;
}

__global__ void CombineForwardKernel(float* out, const float* buckets, const int32_t* row, const float* gate,
                                     int64_t total, int C) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= total) return;
  const int64_t n = i / C;
  out[i] = row[n] >= 0 ? gate[n] * buckets[static_cast<int64_t>(row[n]) * C + i % C] : 0.0f;
}

// One warp per token.
__global__ void CombineBackwardKernel(float* dbuckets, float* dgate, const float* dout, const float* buckets,
                                     const int32_t* row, const float* gate, int N, int C) {
  const int n = blockIdx.x * kWarpsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (n >= N) return;
  if (row[n] < 0) {
    if (lane == 0) dgate[n] = 0.0f;
    return;
  }
  const float* d = dout + static_cast<int64_t>(n) * C;
  const float* x = buckets + static_cast<int64_t>(row[n]) * C;
  float* db = dbuckets + static_cast<int64_t>(row[n]) * C;
  double dot = 0;
  for (int c = lane; c < C; c += 32) {
    dot += static_cast<double>(d[c]) * x[c];
    db[c] = gate[n] * d[c];
  }
  dot = WarpSum(dot);
  if (lane == 0) dgate[n] = static_cast<float>(dot);
}

}  // namespace

CudaResult LaunchRouterSoftmaxTop1(float* probs, int32_t* expert, float* gate, const float* logits, int N, int E,
                                   cudaStream_t stream) {
  if (N <= 0 || E <= 0) return {};
  RouterSoftmaxTop1Kernel<<<Blocks(N, kThreads), kThreads, 0, stream>>>(probs, expert, gate, logits, N, E);
  return SY_CUDA_LAUNCH_RESULT();
}

CudaResult LaunchRouterAssign(int32_t* row, int32_t* counts, int32_t* kept, const int32_t* expert, int N, int E,
                              int capacity, cudaStream_t stream) {
  if (E <= 0) return {};
  const int threads = E < 1024 ? ((E + 31) / 32) * 32 : 1024;
  RouterAssignKernel<<<1, threads, E * sizeof(int32_t), stream>>>(row, counts, kept, expert, N, E, capacity);
  return SY_CUDA_LAUNCH_RESULT();
}

CudaResult LaunchRouterLosses(float* losses, const float* probs, const float* logits, const int32_t* counts, int N,
                              int E, float alpha, float beta, cudaStream_t stream) {
  if (N <= 0 || E <= 0) return {};
  RouterLossesKernel<<<1, kThreads, 0, stream>>>(losses, probs, logits, counts, N, E, alpha, beta);
  return SY_CUDA_LAUNCH_RESULT();
}

CudaResult LaunchRouterBackward(float* dlogits, const float* dgate, const float* probs, const float* logits,
                                const int32_t* expert, const int32_t* counts, int N, int E, float alpha, float beta,
                                float scale, cudaStream_t stream) {
  if (N <= 0 || E <= 0) return {};
  RouterBackwardKernel<<<Blocks(N, kThreads), kThreads, 0, stream>>>(dlogits, dgate, probs, logits, expert, counts,
                                                                     N, E, alpha, beta, scale);
  return SY_CUDA_LAUNCH_RESULT();
}

CudaResult LaunchDispatchForward(float* buckets, const float* inp, const int32_t* row, int N, int C,
                                 cudaStream_t stream) {
  const int64_t total = static_cast<int64_t>(N) * C;
  if (total <= 0) return {};
  DispatchForwardKernel<<<Blocks(total, kThreads), kThreads, 0, stream>>>(buckets, inp, row, total, C);
  return SY_CUDA_LAUNCH_RESULT();
}

CudaResult LaunchDispatchBackward(float* dinp, const float* dbuckets, const int32_t* row, int N, int C,
                                  cudaStream_t stream) {
  const int64_t total = static_cast<int64_t>(N) * C;
  if (total <= 0) return {};
  DispatchBackwardKernel<<<Blocks(total, kThreads), kThreads, 0, stream>>>(dinp, dbuckets, row, total, C);
  return SY_CUDA_LAUNCH_RESULT();
}

CudaResult LaunchCombineForward(float* out, const float* buckets, const int32_t* row, const float* gate, int N, int C,
                                cudaStream_t stream) {
  const int64_t total = static_cast<int64_t>(N) * C;
  if (total <= 0) return {};
  CombineForwardKernel<<<Blocks(total, kThreads), kThreads, 0, stream>>>(out, buckets, row, gate, total, C);
  return SY_CUDA_LAUNCH_RESULT();
}

CudaResult LaunchCombineBackward(float* dbuckets, float* dgate, const float* dout, const float* buckets,
                                 const int32_t* row, const float* gate, int N, int C, cudaStream_t stream) {
  if (N <= 0) return {};
  CombineBackwardKernel<<<Blocks(N, kWarpsPerBlock), kThreads, 0, stream>>>(dbuckets, dgate, dout, buckets, row,
                                                                            gate, N, C);
  return SY_CUDA_LAUNCH_RESULT();
}

}  // namespace sy::gpu::cuda
