// Test helpers: random host tensors and a directional finite-difference check
// (compare <analytic grad, d> with (f(x + h d) - f(x - h d)) / 2h for random d).
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "common/base/philox.h"
#include "gtest/gtest.h"

namespace sy::gpu::testing {

// Uniform values in [lo, hi), reproducible from (seed, tag).
inline std::vector<float> RandomVector(int64_t n, uint32_t tag, float lo = -1.0f, float hi = 1.0f) {
  CounterRng rng(1234, RngStream::kData, tag);
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = lo + (hi - lo) * rng.Uniform(i);
  return v;
}

inline double Dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

// f maps x to a scalar (computed in double by the caller). grad = df/dx (analytic).
// Checks the directional derivative along a random direction.
inline void ExpectDirectionalGrad(const std::function<double(const std::vector<float>&)>& f,
                                  const std::vector<float>& x, const std::vector<float>& grad, uint32_t tag,
                                  double h = 1e-2, double rel_tol = 1e-2, double abs_tol = 1e-4) {
  ASSERT_EQ(x.size(), grad.size());
  const std::vector<float> d = RandomVector(static_cast<int64_t>(x.size()), tag);
  std::vector<float> xp(x), xm(x);
  for (size_t i = 0; i < x.size(); ++i) {
    xp[i] = static_cast<float>(x[i] + h * d[i]);
    xm[i] = static_cast<float>(x[i] - h * d[i]);
  }
  // use the actual float perturbation size so rounding of x + h d does not bias the check
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    num += (static_cast<double>(xp[i]) - xm[i]) * d[i];
    den += static_cast<double>(d[i]) * d[i];
  }
  const double h_eff = num / (2 * den);
  const double fd = (f(xp) - f(xm)) / (2 * h_eff);
  const double analytic = Dot(grad, d);
  EXPECT_NEAR(fd, analytic, abs_tol + rel_tol * std::fabs(analytic)) << "finite difference " << fd << " vs analytic "
                                                                      << analytic;
}

}  // namespace sy::gpu::testing
