// ExpInPlace must give expf's bits for every input on each of its paths (else the
// weights change with the CPU's vector width): a sweep over the finite floats of expf's
// normal range by bit pattern, the edges of its overflow/underflow paths, every ragged
// tail length, and GELU forward/backward and the softmax row against their scalar
// formulas with the library's expf.
#include "gpu/cpu/exact_exp.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "gpu/cpu/cpu_ops.h"
#include "gpu/cpu/thread_pool.h"

namespace sy::gpu::cpu {
namespace {

uint32_t Bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

float FromBits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

// Counts the lanes of `x` where ExpInPlace, or any path it can take on this CPU, and expf
// differ in any bit (NaN == NaN).
int64_t Mismatches(const std::vector<float>& x) {
  int64_t bad = 0;
  auto count = [&](const char* name, const std::vector<float>& v) {
    for (size_t i = 0; i < x.size(); ++i) {
      const float want = std::exp(x[i]);
      if (Bits(v[i]) != Bits(want) && !(std::isnan(v[i]) && std::isnan(want))) {
        if (bad < 5) ADD_FAILURE() << name << ": exp(" << x[i] << "): got " << v[i] << ", expf gives " << want;
        ++bad;
      }
    }
  };
  std::vector<float> v = x;
  ExpInPlace(v.data(), static_cast<int64_t>(v.size()));
  count("ExpInPlace", v);
  const std::pair<ExpPath, const char*> paths[] = {
      {ExpPath::kLibrary, "library"}, {ExpPath::kAvx2, "AVX2"}, {ExpPath::kAvx512, "AVX-512"}};
  for (const auto& [path, name] : paths) {
    if (!ExpPathAvailable(path)) continue;
    v = x;
    ExpInPlaceOn(path, v.data(), static_cast<int64_t>(v.size()));
    count(name, v);
  }
  return bad;
}

TEST(ExactExpTest, SweepOfFloatsByBitPatternMatchesExpf) {
  // Every 509th bit pattern (both signs, all exponents): about 8.4 million floats.
  std::vector<float> x;
  for (uint64_t b = 0; b < (uint64_t{1} << 32); b += 509) x.push_back(FromBits(static_cast<uint32_t>(b)));
  EXPECT_EQ(Mismatches(x), 0);
}

TEST(ExactExpTest, DenseAroundZeroWhereGeluLivesMatchesExpf) {
  std::vector<float> x;
  for (float f = -20.0f; f < 20.0f; f += 1.0f / 4096) x.push_back(f);
  for (uint32_t b = Bits(0.0f); b < Bits(0.0f) + 200000; ++b) x.push_back(FromBits(b));
  EXPECT_EQ(Mismatches(x), 0);
}

TEST(ExactExpTest, OverflowUnderflowAndSpecialValuesMatchExpf) {
  // The first two are the only floats where glibc's FMA build of expf and its plain build
  // differ (found by comparing all 2^32): they tell whether the contractions are right.
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x = {0x1.04845ep+5f, -0x1.f8cbb2p+5f, 0.0f, -0.0f, 87.99999f, 88.0f, -88.0f, 88.72283f, 88.72284f, 89.0f, -103.27893f,
                          -103.97208f, -104.0f, -150.0f, 1e30f, -1e30f, inf, -inf,
                          std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::denorm_min(),
                          -std::numeric_limits<float>::denorm_min(), 1e-30f, -87.33655f, -87.33654f};
  EXPECT_EQ(Mismatches(x), 0);
}

TEST(ExactExpTest, EveryTailLengthMatchesExpf) {
  for (int n = 0; n <= 17; ++n) {
    std::vector<float> x;
    for (int i = 0; i < n; ++i) x.push_back(0.37f * static_cast<float>(i) - 1.5f);
    EXPECT_EQ(Mismatches(x), 0) << "n = " << n;
  }
}

// GELU through ExpInPlace against the scalar formulas, element by element, bit for bit.
TEST(ExactExpTest, GeluForwardAndBackwardKeepTheScalarBits) {
  const int64_t n = 10007;  // several blocks and threads, with a ragged end
  std::vector<float> x(n), dout(n), out(n), dinp(n);
  for (int64_t i = 0; i < n; ++i) {
    x[i] = static_cast<float>((i * 7919) % 20011) / 1000.0f - 10.0f;
    dout[i] = static_cast<float>((i * 104729) % 1000) / 1000.0f - 0.5f;
  }
  x[0] = 60.0f;  // exp(-2u) underflows
  x[1] = -60.0f;  // exp(-2u) overflows
  ThreadPool pool(2);
  GeluForward(pool, out.data(), x.data(), n);
  GeluBackward(pool, dinp.data(), x.data(), dout.data(), n);
  const float scale = 0.7978845608028654f;
  for (int64_t i = 0; i < n; ++i) {
    const float u = scale * (x[i] + 0.044715f * x[i] * x[i] * x[i]);
    const float sig = 1.0f / (1.0f + std::exp(-2.0f * u));
    const float du = scale * (1.0f + 3.0f * 0.044715f * x[i] * x[i]);
    ASSERT_EQ(Bits(out[i]), Bits(x[i] * sig)) << "forward at x = " << x[i];
    ASSERT_EQ(Bits(dinp[i]), Bits((sig + 2.0f * x[i] * sig * (1.0f - sig) * du) * dout[i])) << "backward at x = " << x[i];
  }
}

// The vectorised softmax row against softmax_row.h's scalar one: the maximum, the sum
// and every exponential bit for bit, written elsewhere and in place, for row lengths
// around the vector width and rows whose shifted values fall below -88 (expf's own path).
TEST(ExactExpTest, SoftmaxRowKeepsTheScalarBits) {
  for (int n : {1, 2, 3, 4, 5, 7, 8, 9, 31, 64, 65, 256, 1000}) {
    std::vector<float> x(n);
    for (int j = 0; j < n; ++j) x[j] = static_cast<float>(((j + n) * 7919) % 4001) / 40.0f - 50.0f;
    const SoftmaxRowTotals want_totals = [&] {
      std::vector<float> p(n);
      return ExpShiftedRow(p.data(), x.data(), n);
    }();
    std::vector<float> want(n), got(n), in_place = x;
    ExpShiftedRow(want.data(), x.data(), n);
    const SoftmaxRowTotals got_totals = ExpShiftedRowVectorised(got.data(), x.data(), n);
    const SoftmaxRowTotals in_place_totals = ExpShiftedRowVectorised(in_place.data(), in_place.data(), n);
    EXPECT_EQ(Bits(got_totals.max), Bits(want_totals.max)) << "n = " << n;
    EXPECT_EQ(got_totals.sum, want_totals.sum) << "n = " << n;
    EXPECT_EQ(in_place_totals.sum, want_totals.sum) << "n = " << n;
    for (int j = 0; j < n; ++j) {
      ASSERT_EQ(Bits(got[j]), Bits(want[j])) << "n = " << n << ", j = " << j;
      ASSERT_EQ(Bits(in_place[j]), Bits(want[j])) << "in place, n = " << n << ", j = " << j;
    }
  }
}

}  // namespace
}  // namespace sy::gpu::cpu
