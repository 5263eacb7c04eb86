// The one definition of f32 -> bf16 rounding, shared by host code (gpu/tensor.h) and the
// CUDA kernels, so both round alike bit for bit. No dependencies: nvcc compiles it too.
// bf16 = the upper 16 bits of an f32. Rounding is to nearest, ties to even; NaN stays
// NaN (quiet), infinities stay infinite.
#pragma once

#include <cstdint>

#include "gpu/host_device.h"

namespace sy::gpu {

// The f32 bits `bits` rounded so: the bf16 in the upper half, the lower half zero.
// Branch-free, so that loops of it vectorise (a branch on NaN made them 10x slower).
SY_HOST_DEVICE inline uint32_t RoundedBf16Bits(uint32_t bits) {
  const uint32_t nearest_even = (bits + 0x7fffu + ((bits >> 16) & 1u)) & 0xffff0000u;  // inf stays inf
  const uint32_t quiet_nan = (bits | 0x00400000u) & 0xffff0000u;
  return (bits & 0x7fffffffu) > 0x7f800000u ? quiet_nan : nearest_even;
}

}  // namespace sy::gpu
