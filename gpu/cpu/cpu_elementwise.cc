// The CPU backend's elementwise loops (see cpu_ops.h): bias, add / scale / multiply,
// bf16 rounding, GELU, the Philox dropout and jitter masks, AdamW and the sum of squares
// behind the gradient norm. gpu/CMakeLists.txt compiles this file with -O3 (the loops need
// its vectoriser), without contraction (so the AVX-512 / AVX2 clones round as the baseline
// build does) and without errno from square roots: every result stays exact.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "gpu/cpu/cpu_ops.h"
#include "gpu/cpu/exact_exp.h"
#include "gpu/tensor.h"

namespace sy::gpu::cpu {
namespace {

constexpr int64_t kGrain = 4096;  // minimum elements per thread for elementwise loops

// u[4 * j + lane] = CounterRng(key).Uniform(4 * (block + j) + lane) for 64 Philox
// blocks computed side by side (structure of arrays) so that the compiler vectorises
// them; cloned for AVX-512 / AVX2 / baseline x86-64, picked at load time.
__attribute__((target_clones("avx512f", "avx2", "default"))) void FillUniform256(const RngKey& key, uint64_t block,
                                                                               float* u) {
  constexpr int kBlocks = 64;
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u, kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  const uint32_t stream = static_cast<uint32_t>(key.stream) << 16;
  uint32_t c0[kBlocks], c1[kBlocks], c2[kBlocks], c3[kBlocks];
  for (int j = 0; j < kBlocks; ++j) {
    c0[j] = static_cast<uint32_t>(block + j);
    c1[j] = static_cast<uint32_t>((block + j) >> 32) ^ stream;
    c2[j] = key.a;
    c3[j] = key.b;
  }
  uint32_t k0 = static_cast<uint32_t>(key.seed), k1 = static_cast<uint32_t>(key.seed >> 32);
  for (int round = 0; round < 10; ++round) {
    for (int j = 0; j < kBlocks; ++j) {
      const uint64_t p0 = static_cast<uint64_t>(kM0) * c0[j];
      const uint64_t p1 = static_cast<uint64_t>(kM1) * c2[j];
      const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1[j] ^ k0;
      const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3[j] ^ k1;
      c0[j] = n0;
      c1[j] = static_cast<uint32_t>(p1);
      c2[j] = n2;
      c3[j] = static_cast<uint32_t>(p0);
    }
    k0 += kW0;
    k1 += kW1;
  }
  for (int j = 0; j < kBlocks; ++j) {
    u[4 * j + 0] = static_cast<float>(c0[j] >> 8) * (1.0f / 16777216.0f);
    u[4 * j + 1] = static_cast<float>(c1[j] >> 8) * (1.0f / 16777216.0f);
    u[4 * j + 2] = static_cast<float>(c2[j] >> 8) * (1.0f / 16777216.0f);
    u[4 * j + 3] = static_cast<float>(c3[j] >> 8) * (1.0f / 16777216.0f);
  }
}

// Calls f(i, n, u) on consecutive chunks covering [begin, end): u[k] =
// Uniform(key.offset + i + k) for k < n (at most 256 draws per chunk).
template <typename F>
void ForEachUniformChunk(const RngKey& key, int64_t begin, int64_t end, F&& f) {
  float buf[256];
  int64_t i = begin;
  while (i < end) {
    const uint64_t index = key.offset + static_cast<uint64_t>(i);
    const int skip = static_cast<int>(index & 3);
    const int n = static_cast<int>(std::min<int64_t>(256 - skip, end - i));
    FillUniform256(key, index >> 2, buf);
    f(i, n, buf + skip);
    i += n;
  }
}

constexpr float kGeluScale = 0.7978845608028654f;  // sqrt(2/pi)

// GELU(x) = 0.5 x (1 + tanh(u)) = x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3):
// the sigmoid form needs one exp and never cancels for large |x|. GeluSigmoids fills
// sig[k] = sigmoid(2u(x[k])) for k < len: the exponents first, then their exps in one
// vectorised pass (ExpInPlace: expf's bits), then the sigmoids.
// The per-element passes are cloned for AVX-512 / AVX2 / baseline x86-64 and picked at
// load time; this file is compiled without contraction (gpu/CMakeLists.txt), so every
// clone rounds each operation alike and the bits do not depend on the CPU.
constexpr int kGeluBlock = 256;

__attribute__((target_clones("avx512f", "avx2", "default"))) void GeluExponents(const float* x, int len, float* e) {
  for (int k = 0; k < len; ++k) e[k] = -2.0f * (kGeluScale * (x[k] + 0.044715f * x[k] * x[k] * x[k]));
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void SigmoidsOfExps(float* sig, int len) {
  for (int k = 0; k < len; ++k) sig[k] = 1.0f / (1.0f + sig[k]);
}

void GeluSigmoids(const float* x, int len, float* sig) {
  GeluExponents(x, len, sig);
  ExpInPlace(sig, len);
  SigmoidsOfExps(sig, len);
}

// out[k] = inp[k] * sig[k]: GELU from its sigmoids.
__attribute__((target_clones("avx512f", "avx2", "default"))) void GeluFromSigmoids(float* out, const float* inp,
                                                                                   const float* sig, int len) {
  for (int k = 0; k < len; ++k) out[k] = inp[k] * sig[k];
}

// dinp[k] = gelu'(inp[k]) * dout[k] from the sigmoids; dinp may alias dout.
// d/dx [x * s(2u)] = s + x * 2 s (1 - s) * u'(x), with 1 + tanh(u) = 2s and sech^2(u) = 4 s (1 - s).
__attribute__((target_clones("avx512f", "avx2", "default"))) void GeluGradFromSigmoids(float* dinp, const float* inp,
                                                                                       const float* sig,
                                                                                       const float* dout, int len) {
  for (int k = 0; k < len; ++k) {
    const float x = inp[k], s = sig[k];
    const float du = kGeluScale * (1.0f + 3.0f * 0.044715f * x * x);
    dinp[k] = (s + 2.0f * x * s * (1.0f - s) * du) * dout[k];
  }
}

// Calls body(i, len, sig) over [i0, i1) in blocks of at most kGeluBlock elements, with
// sig the sigmoids of inp[i .. i + len).
template <typename Body>
void ForEachGeluBlock(const float* inp, int64_t i0, int64_t i1, Body&& body) {
  float sig[kGeluBlock];
  for (int64_t i = i0; i < i1; i += kGeluBlock) {
    const int len = static_cast<int>(std::min<int64_t>(kGeluBlock, i1 - i));
    GeluSigmoids(inp + i, len, sig);
    body(i, len, sig);
  }
}

// One AdamW step's constants (see AdamWUpdate).
struct AdamWStep {
  float grad_scale, decay, beta1, beta2, step_size, bc2_sqrt, eps;
};

// AdamW over n elements, cloned like the GELU passes (the file has no contraction, and
// -fno-math-errno lets the square root vectorise: v is never negative).
__attribute__((target_clones("avx512f", "avx2", "default"))) void AdamWSpan(float* param, float* m, float* v,
                                                                            const float* grad, int64_t n,
                                                                            const AdamWStep& s) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = grad[i] * s.grad_scale;
    param[i] *= s.decay;
    m[i] = s.beta1 * m[i] + (1.0f - s.beta1) * g;
    v[i] = s.beta2 * v[i] + (1.0f - s.beta2) * g * g;
    param[i] -= s.step_size * m[i] / (std::sqrt(v[i]) / s.bc2_sqrt + s.eps);
  }
}

}  // namespace

void AddBias(ThreadPool& pool, float* out, const float* bias, int rows, int cols) {
  pool.ParallelFor(rows, std::max<int64_t>(1, kGrain / std::max(cols, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* o = out + r * cols;
      for (int c = 0; c < cols; ++c) o[c] += bias[c];
    }
  });
}

void BiasBackward(ThreadPool& pool, float* dbias, const float* dout, int rows, int cols) {
  pool.ParallelFor(cols, 16, [&](int64_t c0, int64_t c1) {
    std::vector<double> acc(c1 - c0, 0.0);
    for (int64_t r = 0; r < rows; ++r) {
      const float* d = dout + r * cols;
      for (int64_t c = c0; c < c1; ++c) acc[c - c0] += d[c];
    }
    for (int64_t c = c0; c < c1; ++c) dbias[c] += static_cast<float>(acc[c - c0]);
  });
}

void Add(ThreadPool& pool, float* out, const float* a, const float* b, int64_t n) {
  pool.ParallelFor(n, kGrain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) out[i] = a[i] + b[i];
  });
}

void Scale(ThreadPool& pool, float* x, float s, int64_t n) {
  pool.ParallelFor(n, kGrain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) x[i] *= s;
  });
}

void Multiply(ThreadPool& pool, float* out, const float* a, const float* b, int64_t n) {
  pool.ParallelFor(n, kGrain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) out[i] = a[i] * b[i];
  });
}

void RoundToBf16(ThreadPool& pool, float* x, int64_t n) {
  pool.ParallelFor(n, kGrain, [&](int64_t i0, int64_t i1) { gpu::RoundToBf16(x + i0, i1 - i0); });
}

void GeluForward(ThreadPool& pool, float* out, const float* inp, int64_t n) {
  pool.ParallelFor(n, kGrain, [&](int64_t i0, int64_t i1) {
    ForEachGeluBlock(inp, i0, i1,
                     [&](int64_t i, int len, const float* sig) { GeluFromSigmoids(out + i, inp + i, sig, len); });
  });
}

void GeluBackward(ThreadPool& pool, float* dinp, const float* inp, const float* dout, int64_t n) {
  pool.ParallelFor(n, kGrain, [&](int64_t i0, int64_t i1) {
    ForEachGeluBlock(inp, i0, i1, [&](int64_t i, int len, const float* sig) {
      GeluGradFromSigmoids(dinp + i, inp + i, sig, dout + i, len);
    });
  });
}

void DropoutApply(ThreadPool& pool, float* out, const float* inp, int64_t n, float rate, const RngKey& key) {
  if (rate <= 0.0f) {
    if (out != inp) std::memmove(out, inp, n * sizeof(float));
    return;
  }
  const float keep_scale = 1.0f / (1.0f - rate);
  pool.ParallelFor(n, kGrain, [&](int64_t i0, int64_t i1) {
    ForEachUniformChunk(key, i0, i1, [&](int64_t i, int len, const float* u) {
      float* o = out + i;  // may alias x (in-place dropout): element k reads x[k] before writing o[k]
      const float* x = inp + i;
      const float r = rate, scale = keep_scale;
      for (int k = 0; k < len; ++k) o[k] = u[k] >= r ? x[k] * scale : 0.0f;
    });
  });
}

void JitterForward(ThreadPool& pool, float* out, float* noise, const float* inp, int64_t n, float eps,
                   const RngKey& key) {
  pool.ParallelFor(n, kGrain, [&](int64_t i0, int64_t i1) {
    ForEachUniformChunk(key, i0, i1, [&](int64_t i, int len, const float* u) {
      float* nz = noise + i;
      float* o = out + i;
      const float* x = inp + i;
      for (int k = 0; k < len; ++k) {
        nz[k] = 1.0f - eps + 2.0f * eps * u[k];
        o[k] = x[k] * nz[k];
      }
    });
  });
}

void AdamWUpdate(ThreadPool& pool, float* param, float* m, float* v, const float* grad, int64_t n, float lr,
                 float beta1, float beta2, float eps, float weight_decay, float grad_scale, int64_t t) {
  const double bc1 = 1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(t));
  const double bc2 = 1.0 - std::pow(static_cast<double>(beta2), static_cast<double>(t));
  const float step_size = static_cast<float>(lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const AdamWStep step{grad_scale, 1.0f - lr * weight_decay, beta1, beta2, step_size, bc2_sqrt, eps};
  pool.ParallelFor(n, kGrain, [&](int64_t i0, int64_t i1) {
    AdamWSpan(param + i0, m + i0, v + i0, grad + i0, i1 - i0, step);
  });
}

double SumSquares(ThreadPool& pool, const float* x, int64_t n) {
  constexpr int64_t kChunk = 8192;  // fixed chunking: the order does not depend on threads
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(chunks, 0.0);
  pool.ParallelFor(chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double s = 0;
      for (int64_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i) s += static_cast<double>(x[i]) * x[i];
      partial[c] = s;
    }
  });
  double total = 0;
  for (double p : partial) total += p;
  return total;
}

}  // namespace sy::gpu::cpu
