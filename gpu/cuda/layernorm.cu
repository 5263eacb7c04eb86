// LayerNorm kernels and launchers (see layernorm.cuh).
#include "gpu/cuda/layernorm.cuh"
#include "gpu/cuda/warp_reduce.cuh"

namespace sy::gpu::cuda {
namespace {

constexpr int kThreads = 256;  // 8 warps per block, one row per warp
constexpr int kWarpsPerBlock = kThreads / 32;
constexpr float kEps = 1e-5f;

__global__ void LayerNormForwardKernel(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                                       const float* bias, int N, int C) {
  const int row = blockIdx.x * kWarpsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= N) return;
  const float* x = inp + static_cast<int64_t>(row) * C;
  double s = 0;
  for (int c = lane; c < C; c += 32) s += x[c];
  const double m = WarpSum(s) / C;
  double v = 0;
  for (int c = lane; c < C; c += 32) v += (x[c] - m) * (x[c] - m);
  const float r = static_cast<float>(1.0 / sqrt(WarpSum(v) / C + kEps));
  const float mf = static_cast<float>(m);
  float* o = out + static_cast<int64_t>(row) * C;
  for (int c = lane; c < C; c += 32) o[c] = (x[c] - mf) * r * weight[c] + bias[c];
  if (lane == 0) {
    mean[row] = mf;
    rstd[row] = r;
  }
}

__global__ void LayerNormBackwardInputKernel(float* dinp, const float* dout, const float* inp, const float* weight,
                                             const float* mean, const float* rstd, int N, int C) {
  const int row = blockIdx.x * kWarpsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= N) return;
  const float* x = inp + static_cast<int64_t>(row) * C;
  const float* d = dout + static_cast<int64_t>(row) * C;
  const float m = mean[row], r = rstd[row];
  double dnorm_mean = 0, dnorm_norm_mean = 0;
  for (int c = lane; c < C; c += 32) {
    const float dn = d[c] * weight[c];
    dnorm_mean += dn;
    dnorm_norm_mean += static_cast<double>(dn) * ((x[c] - m) * r);
  }
  const float a = static_cast<float>(WarpSum(dnorm_mean) / C);
  const float b = static_cast<float>(WarpSum(dnorm_norm_mean) / C);
  float* di = dinp + static_cast<int64_t>(row) * C;
  for (int c = lane; c < C; c += 32) di[c] += (d[c] * weight[c] - a - (x[c] - m) * r * b) * r;
}

__global__ void LayerNormBackwardParamsKernel(float* dweight, float* dbias, const float* dout, const float* inp,
                                              const float* mean, const float* rstd, int N, int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  double dw = 0, db = 0;
  for (int n = 0; n < N; ++n) {
    const int64_t i = static_cast<int64_t>(n) * C + c;
    dw += static_cast<double>((inp[i] - mean[n]) * rstd[n]) * dout[i];
    db += dout[i];
  }
  dweight[c] += static_cast<float>(dw);
  dbias[c] += static_cast<float>(db);
}

unsigned int RowBlocks(int N) { return static_cast<unsigned int>((N + kWarpsPerBlock - 1) / kWarpsPerBlock); }

}  // namespace

CudaResult LaunchLayerNormForward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                                  const float* bias, int N, int C, cudaStream_t stream) {
  if (N <= 0 || C <= 0) return {};
  LayerNormForwardKernel<<<RowBlocks(N), kThreads, 0, stream>>>(out, mean, rstd, inp, weight, bias, N, C);
  return SY_CUDA_LAUNCH_RESULT();
}

CudaResult LaunchLayerNormBackward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                                   const float* weight, const float* mean, const float* rstd, int N, int C,
                                   cudaStream_t stream) {
  if (N <= 0 || C <= 0) return {};
  LayerNormBackwardInputKernel<<<RowBlocks(N), kThreads, 0, stream>>>(dinp, dout, inp, weight, mean, rstd, N, C);
  if (CudaResult r = SY_CUDA_LAUNCH_RESULT(); !r.ok()) return r;
  LayerNormBackwardParamsKernel<<<(C + kThreads - 1) / kThreads, kThreads, 0, stream>>>(dweight, dbias, dout, inp,
                                                                                     mean, rstd, N, C);
  return SY_CUDA_LAUNCH_RESULT();
}

}  // namespace sy::gpu::cuda
