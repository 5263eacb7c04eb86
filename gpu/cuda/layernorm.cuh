// Launchers for LayerNorm (eps 1e-5, biased variance) forward and backward of
// the CUDA backend; semantics of gpu/backend.h. One warp per row; the weight and
// bias gradients are summed over rows in order by one thread per channel.
#pragma once

#include "gpu/cuda/cuda_check.cuh"

namespace sy::gpu::cuda {

// out (N, C), mean (N), rstd (N) from inp (N, C), weight (C), bias (C).
CudaResult LaunchLayerNormForward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                                  const float* bias, int N, int C, cudaStream_t stream);
// dinp (N, C) +=, dweight (C) +=, dbias (C) +=.
CudaResult LaunchLayerNormBackward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                                   const float* weight, const float* mean, const float* rstd, int N, int C,
                                   cudaStream_t stream);

}  // namespace sy::gpu::cuda
