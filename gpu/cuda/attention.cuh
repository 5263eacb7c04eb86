// Launchers for the causal softmax of attention (forward and backward) of the
// CUDA backend. The products q·k^T, att·v and their gradients are cuBLAS
// strided-batched GEMMs issued by the backend exactly as the CPU reference
// issues its sgemm calls; these kernels do the row-wise parts. One warp per row.
#pragma once

#include <cstdint>

#include "gpu/cuda/cuda_check.cuh"

namespace sy::gpu::cuda {

// att (rows, T), row r at position t = r % T: softmax over columns 0..t in place,
// columns above t set to 0. rows = B*NH*T.
CudaResult LaunchCausalSoftmaxForward(float* att, int64_t rows, int T, cudaStream_t stream);
// datt (rows, T) in place: scale * att * (datt - <att, datt>) over columns 0..t, 0 above.
CudaResult LaunchCausalSoftmaxBackward(float* datt, const float* att, int64_t rows, int T, float scale,
                                       cudaStream_t stream);

}  // namespace sy::gpu::cuda
