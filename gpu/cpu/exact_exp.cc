// ExpInPlace (see exact_exp.h). glibc (2.28 on; Debian 12 has 2.36) computes expf in
// double: k = round(x * 32/ln2), r = x * 32/ln2 - k, 2^(k/32) from a 32-entry table
// with k/32's integer part added to the exponent bits, times a cubic in r, rounded to
// float once. On x86-64 it picks, at load time, a build of that code with fused
// multiply-adds when the CPU has FMA and AVX2. Here the same operations run several lanes
// at a time, contracted exactly where that build contracts them, so each lane rounds the
// same way: four lanes in AVX2 + FMA (the table read by a gather), or, where the CPU has
// AVX-512, eight (the table read by two two-register permutes, about 2.5 times faster
// than the gather on this project's machines). The table and coefficients are the ones
// that algorithm defines (the table is recomputed from exp2l). Where glibc would not pick
// the FMA build, or for |x| >= 88 and NaN (overflow, underflow and errno paths), the
// library itself is called. tests/unit/gpu/exact_exp_test.cc compares every path against
// expf.
#include "gpu/cpu/exact_exp.h"

#include <immintrin.h>

#include <array>
#include <cmath>
#include <cstring>

namespace sy::gpu::cpu {
namespace {

constexpr int kTableBits = 5;
constexpr double kN = 1 << kTableBits;
constexpr double kShift = 0x1.8p+52;  // adding it rounds to an integer in the low mantissa bits
constexpr double kInvLn2N = 0x1.71547652b82fep+0 * kN;
constexpr double kC0 = 0x1.c6af84b912394p-5 / kN / kN / kN;
constexpr double kC1 = 0x1.ebfce50fac4f3p-3 / kN / kN;
constexpr double kC2 = 0x1.62e42ff0c52d6p-1 / kN;

// tab[i] = bits of 2^(i/32) less i << (52 - 5), so that adding k << 47 to tab[k % 32]
// gives the bits of 2^(k/32) for any integer k of expf's range.
using ExpTable = std::array<int64_t, 1 << kTableBits>;

ExpTable MakeTable() {
  ExpTable tab{};
  for (int i = 0; i < (1 << kTableBits); ++i) {
    const double v = static_cast<double>(exp2l(static_cast<long double>(i) / kN));
    uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    tab[i] = static_cast<int64_t>(bits - (static_cast<uint64_t>(i) << (52 - kTableBits)));
  }
  return tab;
}

const ExpTable& Table() {
  static const ExpTable tab = MakeTable();
  return tab;
}

// Four lanes of expf; every |x| < 88.
__attribute__((target("avx2,fma"))) __m128 Exp4(__m128 x, const int64_t* tab) {
  const __m256d xd = _mm256_cvtps_pd(x);
  const __m256d shift = _mm256_set1_pd(kShift), inv_ln2n = _mm256_set1_pd(kInvLn2N);
  __m256d kd = _mm256_fmadd_pd(inv_ln2n, xd, shift);
  const __m256i ki = _mm256_castpd_si256(kd);
  kd = _mm256_sub_pd(kd, shift);
  const __m256d r = _mm256_fmsub_pd(inv_ln2n, xd, kd);
  const __m256i index = _mm256_and_si256(ki, _mm256_set1_epi64x((1 << kTableBits) - 1));
  const __m256i t = _mm256_add_epi64(_mm256_i64gather_epi64(reinterpret_cast<const long long*>(tab), index, 8),
                                     _mm256_slli_epi64(ki, 52 - kTableBits));
  const __m256d s = _mm256_castsi256_pd(t);
  const __m256d z = _mm256_fmadd_pd(_mm256_set1_pd(kC0), r, _mm256_set1_pd(kC1));
  const __m256d r2 = _mm256_mul_pd(r, r);
  __m256d y = _mm256_fmadd_pd(_mm256_set1_pd(kC2), r, _mm256_set1_pd(1.0));
  y = _mm256_fmadd_pd(z, r2, y);
  return _mm256_cvtpd_ps(_mm256_mul_pd(y, s));
}

__attribute__((target("avx2,fma"))) void ExpInPlaceAvx2(float* v, int64_t n) {
  const int64_t* tab = Table().data();
  const __m128 limit = _mm_set1_ps(88.0f);
  const __m128 abs_mask = _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff));
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m128 x = _mm_loadu_ps(v + i);
    // Not (|x| < 88): large, infinite or NaN lanes take the library's own path.
    if (_mm_movemask_ps(_mm_cmp_ps(_mm_and_ps(x, abs_mask), limit, _CMP_NLT_UQ)) != 0) {
      for (int k = 0; k < 4; ++k) v[i + k] = std::exp(v[i + k]);
      continue;
    }
    _mm_storeu_ps(v + i, Exp4(x, tab));
  }
  for (; i < n; ++i) v[i] = std::exp(v[i]);
}

// GCC 12's AVX-512 intrinsics fill the lanes they leave undefined from a self-initialised
// variable, which -Wmaybe-uninitialized reports where they are inlined: a false positive
// in the compiler's own headers, silenced for the two AVX-512 functions only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// Eight lanes of expf, the same operations as Exp4 (AVX-512F has the fused multiply-adds);
// every |x| < 88. The table's 32 entries sit in four registers: a permute over each pair
// picks by the index's low four bits, its fifth bit picks the pair.
__attribute__((target("avx512f"))) __m256 Exp8(__m256 x, const int64_t* tab) {
  const __m512d xd = _mm512_cvtps_pd(x);
  const __m512d shift = _mm512_set1_pd(kShift), inv_ln2n = _mm512_set1_pd(kInvLn2N);
  __m512d kd = _mm512_fmadd_pd(inv_ln2n, xd, shift);
  const __m512i ki = _mm512_castpd_si512(kd);
  kd = _mm512_sub_pd(kd, shift);
  const __m512d r = _mm512_fmsub_pd(inv_ln2n, xd, kd);
  const __m512i low = _mm512_permutex2var_epi64(_mm512_loadu_si512(tab), ki, _mm512_loadu_si512(tab + 8));
  const __m512i high = _mm512_permutex2var_epi64(_mm512_loadu_si512(tab + 16), ki, _mm512_loadu_si512(tab + 24));
  const __mmask8 from_high = _mm512_test_epi64_mask(ki, _mm512_set1_epi64(1 << (kTableBits - 1)));
  const __m512i t = _mm512_add_epi64(_mm512_mask_blend_epi64(from_high, low, high), _mm512_slli_epi64(ki, 52 - kTableBits));
  const __m512d s = _mm512_castsi512_pd(t);
  const __m512d z = _mm512_fmadd_pd(_mm512_set1_pd(kC0), r, _mm512_set1_pd(kC1));
  const __m512d r2 = _mm512_mul_pd(r, r);
  __m512d y = _mm512_fmadd_pd(_mm512_set1_pd(kC2), r, _mm512_set1_pd(1.0));
  y = _mm512_fmadd_pd(z, r2, y);
  return _mm512_cvtpd_ps(_mm512_mul_pd(y, s));
}

__attribute__((target("avx512f"))) void ExpInPlaceAvx512(float* v, int64_t n) {
  const int64_t* tab = Table().data();
  const __m256 limit = _mm256_set1_ps(88.0f);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(v + i);
    // Not (|x| < 88): large, infinite or NaN lanes take the library's own path.
    if (_mm256_movemask_ps(_mm256_cmp_ps(_mm256_and_ps(x, abs_mask), limit, _CMP_NLT_UQ)) != 0) {
      for (int k = 0; k < 8; ++k) v[i + k] = std::exp(v[i + k]);
      continue;
    }
    _mm256_storeu_ps(v + i, Exp8(x, tab));
  }
  ExpInPlaceAvx2(v + i, n - i);  // the last up to seven lanes
}
#pragma GCC diagnostic pop

void ExpInPlaceLibrary(float* v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) v[i] = std::exp(v[i]);
}

}  // namespace

bool ExpPathAvailable(ExpPath path) {
  // The FMA build's test is the one glibc's selector makes; without it, only the library.
  static const bool fma = __builtin_cpu_supports("fma") && __builtin_cpu_supports("avx2");
  static const bool avx512 = fma && __builtin_cpu_supports("avx512f");
  switch (path) {
    case ExpPath::kLibrary: return true;
    case ExpPath::kAvx2: return fma;
    case ExpPath::kAvx512: return avx512;
  }
  return false;
}

void ExpInPlaceOn(ExpPath path, float* v, int64_t n) {
  switch (path) {
    case ExpPath::kAvx512: return ExpInPlaceAvx512(v, n);
    case ExpPath::kAvx2: return ExpInPlaceAvx2(v, n);
    case ExpPath::kLibrary: return ExpInPlaceLibrary(v, n);
  }
}

void ExpInPlace(float* v, int64_t n) {
  static const ExpPath widest = ExpPathAvailable(ExpPath::kAvx512) ? ExpPath::kAvx512
                                : ExpPathAvailable(ExpPath::kAvx2) ? ExpPath::kAvx2
                                                                   : ExpPath::kLibrary;
  ExpInPlaceOn(widest, v, n);
}

SoftmaxRowTotals ExpShiftedRowVectorised(float* p, const float* x, int n) {
  const float mx = RowMax(x, n);
  for (int j = 0; j < n; ++j) p[j] = x[j] - mx;
  ExpInPlace(p, n);
  double sum = 0;
  for (int j = 0; j < n; ++j) sum += p[j];
  return {mx, sum};
}

}  // namespace sy::gpu::cpu
