// The row softmax both backends compute one row per thread (the CPU's attention, loss
// and router ops, the CUDA router kernel), written once so the two stay the same
// arithmetic: exp(x - max) in float, the sum in double in index order, one float
// reciprocal. The CPU runs ExpShiftedRow's operations with its exponentials four at a
// time (cpu/exact_exp.h, the same bits). Compiles as host code and, under nvcc, as
// device code too.
#pragma once

#include <math.h>

#include "gpu/host_device.h"

namespace sy::gpu {

// What a row's softmax needs besides the exponentials: the row's maximum and the
// sum of exp(x - max).
struct SoftmaxRowTotals {
  float max;
  double sum;
};

// The row's maximum (a NaN after the first entry is passed over, as the kernels do).
SY_HOST_DEVICE inline float RowMax(const float* x, int n) {
  float mx = x[0];
  for (int j = 1; j < n; ++j) mx = mx < x[j] ? x[j] : mx;
  return mx;
}

// p[j] = exp(x[j] - max(x)) for j < n (not yet normalised).
SY_HOST_DEVICE inline SoftmaxRowTotals ExpShiftedRow(float* p, const float* x, int n) {
  const float mx = RowMax(x, n);
  double sum = 0;
  for (int j = 0; j < n; ++j) {
    p[j] = expf(x[j] - mx);
    sum += p[j];
  }
  return {mx, sum};
}

// Divides the row by `sum` (as one float reciprocal) and returns the index of its
// largest entry, the first on ties.
SY_HOST_DEVICE inline int NormalizeRowTop1(float* p, int n, double sum) {
  const float inv = static_cast<float>(1.0 / sum);
  int best = 0;
  for (int j = 0; j < n; ++j) {
    p[j] *= inv;
    if (p[j] > p[best]) best = j;
  }
  return best;
}

}  // namespace sy::gpu
