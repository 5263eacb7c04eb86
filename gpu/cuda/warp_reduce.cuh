// Warp-wide sums with a fixed butterfly order: the same inputs give the same
// result on every run, which keeps the CUDA backend deterministic.
#pragma once

namespace sy::gpu::cuda {

#ifdef __CUDACC__
template <typename Real>
__device__ inline Real WarpSum(Real x) {
  for (int offset = 16; offset > 0; offset >>= 1) x += __shfl_xor_sync(0xffffffffu, x, offset);
  return x;
}

__device__ inline float WarpMax(float x) {
  for (int offset = 16; offset > 0; offset >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, offset));
  return x;
}
#endif

}  // namespace sy::gpu::cuda
