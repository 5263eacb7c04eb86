// exp over a float array, bit for bit what the C library's expf returns, but several
// lanes at a time. GELU needs one exp per FFN activation, and called one at a time
// expf was about a sixth of a trainer's CPU time; the weights must not change by a bit,
// so a faster exp has to be the library's own arithmetic, vectorised (exact_exp.cc).
#pragma once

#include <cstdint>

#include "gpu/softmax_row.h"

namespace sy::gpu::cpu {

// v[i] = expf(v[i]) for i < n, identical bits to the scalar call on this machine, on the
// widest path the CPU has.
void ExpInPlace(float* v, int64_t n);

// The ways ExpInPlace can run: expf lane by lane, 4 lanes (AVX2 + FMA), 8 (AVX-512).
enum class ExpPath { kLibrary, kAvx2, kAvx512 };
// Whether `path` runs here and gives expf's bits (the vector paths need the CPU on which
// glibc picks its FMA build of expf).
bool ExpPathAvailable(ExpPath path);
// ExpInPlace on a given available path (tests check each against expf).
void ExpInPlaceOn(ExpPath path, float* v, int64_t n);

// ExpShiftedRow (gpu/softmax_row.h) with its exponentials through ExpInPlace: the same
// bits, as the shift, each exp and the in-order sum in double are the same operations.
// The softmaxes of attention rows, of the loss over the vocabulary and of the router
// run through it.
// `p` may be `x`.
SoftmaxRowTotals ExpShiftedRowVectorised(float* p, const float* x, int n);

}  // namespace sy::gpu::cpu
