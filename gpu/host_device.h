// SY_HOST_DEVICE marks a function that compiles as host code and, under nvcc, as device
// code too: the arithmetic both backends share is written once (softmax_row.h, bf16_bits.h).
#pragma once

#if defined(__CUDACC__)
#define SY_HOST_DEVICE __host__ __device__
#else
#define SY_HOST_DEVICE
#endif
