// The CPU reference backend (see cpu_backend.h): OpenBLAS for products, plain loops
// over a fork-join pool for everything else. Reductions that cross threads are
// avoided: each output element is owned by one chunk and summed in a fixed order
// (in double where the sum is long), so results do not depend on the thread count.
#include "gpu/cpu/cpu_backend.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gpu/cpu/thread_pool.h"

namespace sy::gpu {
namespace {

constexpr float kLayerNormEps = 1e-5f;
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

class CpuBackend : public Backend {
 public:
  // OpenBLAS runs single-threaded inside the pool's threads: one set of threads for
  // everything, so idle BLAS workers never spin against the elementwise loops.
  explicit CpuBackend(int threads) : pool_(threads) { openblas_set_num_threads(1); }

  Device device() const override { return Device::Cpu(); }

  absl::StatusOr<void*> Alloc(size_t bytes) override {
    const size_t rounded = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded);
    if (p == nullptr) return absl::ResourceExhaustedError(absl::StrCat("cpu alloc of ", bytes, " bytes failed"));
    return p;
  }
  void Free(void* ptr) override { std::free(ptr); }
  absl::Status CopyHostToDevice(void* dst, const void* src, size_t bytes) override {
    if (bytes) std::memcpy(dst, src, bytes);
    return absl::OkStatus();
  }
  absl::Status CopyDeviceToHost(void* dst, const void* src, size_t bytes) override {
    if (bytes) std::memcpy(dst, src, bytes);
    return absl::OkStatus();
  }
  absl::Status CopyDeviceToDevice(void* dst, const void* src, size_t bytes) override {
    if (bytes) std::memmove(dst, src, bytes);
    return absl::OkStatus();
  }
  absl::Status Zero(void* ptr, size_t bytes) override {
    if (bytes) std::memset(ptr, 0, bytes);
    return absl::OkStatus();
  }
  absl::Status Synchronize() override { return absl::OkStatus(); }

  // Products are cut into FIXED blocks of rows (or columns, whichever dimension is
  // larger): at most kGemmMaxBlocks blocks, each a multiple of kGemmBlock, shared out
  // by the threads. The cut depends only on the shape, so results are the same for
  // any thread count.
  static constexpr int kGemmBlock = 64;
  static constexpr int kGemmMaxBlocks = 8;
  static constexpr int64_t kGemmSplitWork = int64_t{1} << 20;  // m*n*k below this: one call

  static void BlasGemm(float* c, const float* a, const float* b, int m, int n, int k, bool trans_a, bool trans_b,
                       float alpha, float beta, int lda, int ldb, int ldc) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k,
                alpha, a, lda, b, ldb, beta, c, ldc);
  }

  void Sgemm(float* c, const float* a, const float* b, int m, int n, int k, bool trans_a,
             bool trans_b, float alpha, float beta, int lda, int ldb, int ldc) override {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
      for (int i = 0; i < m; ++i) {  // BLAS semantics: beta 0 overwrites (even NaN)
        float* row = c + static_cast<int64_t>(i) * ldc;
        for (int j = 0; j < n; ++j) row[j] = beta == 0.0f ? 0.0f : row[j] * beta;
      }
      return;
    }
    const int64_t work = int64_t{m} * n * k;
    if (work < kGemmSplitWork || std::max(m, n) <= kGemmBlock) {
      BlasGemm(c, a, b, m, n, k, trans_a, trans_b, alpha, beta, lda, ldb, ldc);
      return;
    }
    const bool split_rows = m >= n;
    const int extent = split_rows ? m : n;
    const int units = (extent + kGemmBlock - 1) / kGemmBlock;
    const int block = kGemmBlock * ((units + kGemmMaxBlocks - 1) / kGemmMaxBlocks);
    const int64_t blocks = (extent + block - 1) / block;
    pool_.ParallelFor(blocks, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t blk = b0; blk < b1; ++blk) {
        const int lo = static_cast<int>(blk * block);
        const int len = std::min(block, extent - lo);
        if (split_rows) {  // rows lo.. of op(a) and c
          const float* a_part = trans_a ? a + lo : a + static_cast<int64_t>(lo) * lda;
          BlasGemm(c + static_cast<int64_t>(lo) * ldc, a_part, b, len, n, k, trans_a, trans_b, alpha, beta, lda, ldb,
                   ldc);
        } else {  // columns lo.. of op(b) and c
          const float* b_part = trans_b ? b + static_cast<int64_t>(lo) * ldb : b + lo;
          BlasGemm(c + lo, a, b_part, m, len, k, trans_a, trans_b, alpha, beta, lda, ldb, ldc);
        }
      }
    });
  }

  // Small products run whole, one per thread; large ones one after another, each split.
  void SgemmStridedBatched(float* c, const float* a, const float* b, int m, int n, int k,
                           bool trans_a, bool trans_b, float alpha, float beta, int lda, int ldb,
                           int ldc, int64_t stride_a, int64_t stride_b, int64_t stride_c,
                           int batch) override {
    if (m <= 0 || n <= 0 || batch <= 0) return;
    if (int64_t{m} * n * k >= kGemmSplitWork || k <= 0) {
      for (int i = 0; i < batch; ++i) {
        Sgemm(c + i * stride_c, a + i * stride_a, b + i * stride_b, m, n, k, trans_a, trans_b, alpha, beta, lda, ldb,
              ldc);
      }
      return;
    }
    pool_.ParallelFor(batch, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        BlasGemm(c + i * stride_c, a + i * stride_a, b + i * stride_b, m, n, k, trans_a, trans_b, alpha, beta, lda,
                 ldb, ldc);
      }
    });
  }

  void AddBias(float* out, const float* bias, int rows, int cols) override {
    pool_.ParallelFor(rows, std::max<int64_t>(1, kGrain / std::max(cols, 1)), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        float* o = out + r * cols;
        for (int c = 0; c < cols; ++c) o[c] += bias[c];
      }
    });
  }

  void BiasBackward(float* dbias, const float* dout, int rows, int cols) override {
    pool_.ParallelFor(cols, 16, [&](int64_t c0, int64_t c1) {
      std::vector<double> acc(c1 - c0, 0.0);
      for (int64_t r = 0; r < rows; ++r) {
        const float* d = dout + r * cols;
        for (int64_t c = c0; c < c1; ++c) acc[c - c0] += d[c];
      }
      for (int64_t c = c0; c < c1; ++c) dbias[c] += static_cast<float>(acc[c - c0]);
    });
  }

  void Add(float* out, const float* a, const float* b, int64_t n) override {
    pool_.ParallelFor(n, kGrain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) out[i] = a[i] + b[i];
    });
  }

  void Scale(float* x, float s, int64_t n) override {
    pool_.ParallelFor(n, kGrain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) x[i] *= s;
    });
  }

  void Multiply(float* out, const float* a, const float* b, int64_t n) override {
    pool_.ParallelFor(n, kGrain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) out[i] = a[i] * b[i];
    });
  }

  static constexpr float kGeluScale = 0.7978845608028654f;  // sqrt(2/pi)

  // GELU(x) = 0.5 x (1 + tanh(u)) = x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3):
  // the sigmoid form needs one exp and never cancels for large |x|.
  static float GeluSigmoid(float x) {
    const float u = kGeluScale * (x + 0.044715f * x * x * x);
    return 1.0f / (1.0f + std::exp(-2.0f * u));
  }

  void GeluForward(float* out, const float* inp, int64_t n) override {
    pool_.ParallelFor(n, kGrain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) out[i] = inp[i] * GeluSigmoid(inp[i]);
    });
  }

  // d/dx [x * s(2u)] = s + x * 2 s (1 - s) * u'(x), with 1 + tanh(u) = 2s and sech^2(u) = 4 s (1 - s).
  void GeluBackward(float* dinp, const float* inp, const float* dout, int64_t n) override {
    pool_.ParallelFor(n, kGrain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const float x = inp[i];
        const float sig = GeluSigmoid(x);
        const float du = kGeluScale * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] = (sig + 2.0f * x * sig * (1.0f - sig) * du) * dout[i];
      }
    });
  }

  void DropoutForward(float* out, const float* inp, int64_t n, float rate, const RngKey& key) override {
    DropoutApply(out, inp, n, rate, key);
  }
  void DropoutBackward(float* dinp, const float* dout, int64_t n, float rate, const RngKey& key) override {
    DropoutApply(dinp, dout, n, rate, key);
  }

  void JitterForward(float* out, float* noise, const float* inp, int64_t n, float eps,
                     const RngKey& key) override {
    pool_.ParallelFor(n, kGrain, [&](int64_t i0, int64_t i1) {
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

  void EncoderForward(float* out, const int32_t* tokens, const float* wte, const float* wpe, int B,
                      int T, int C) override {
    pool_.ParallelFor(static_cast<int64_t>(B) * T, 64, [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        const float* e = wte + static_cast<int64_t>(tokens[n]) * C;
        const float* p = wpe + (n % T) * C;
        float* o = out + n * C;
        for (int c = 0; c < C; ++c) o[c] = e[c] + p[c];
      }
    });
  }

  void EncoderBackward(float* dwte, float* dwpe, const float* dout, const int32_t* tokens, int B, int T,
                       int C) override {
    const int64_t N = static_cast<int64_t>(B) * T;
    pool_.ParallelFor(C, 8, [&](int64_t c0, int64_t c1) {
      for (int64_t n = 0; n < N; ++n) {
        const float* d = dout + n * C;
        float* e = dwte + static_cast<int64_t>(tokens[n]) * C;
        float* p = dwpe + (n % T) * C;
        for (int64_t c = c0; c < c1; ++c) {
          e[c] += d[c];
          p[c] += d[c];
        }
      }
    });
  }

  void LayerNormForward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                        const float* bias, int N, int C) override {
    pool_.ParallelFor(N, 16, [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        const float* x = inp + n * C;
        double s = 0;
        for (int c = 0; c < C; ++c) s += x[c];
        const double m = s / C;
        double v = 0;
        for (int c = 0; c < C; ++c) v += (x[c] - m) * (x[c] - m);
        const float r = static_cast<float>(1.0 / std::sqrt(v / C + kLayerNormEps));
        const float mf = static_cast<float>(m);
        float* o = out + n * C;
        for (int c = 0; c < C; ++c) o[c] = (x[c] - mf) * r * weight[c] + bias[c];
        mean[n] = mf;
        rstd[n] = r;
      }
    });
  }

  void LayerNormBackward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                         const float* weight, const float* mean, const float* rstd, int N,
                         int C) override {
    pool_.ParallelFor(N, 16, [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        const float* x = inp + n * C;
        const float* d = dout + n * C;
        const float m = mean[n], r = rstd[n];
        double dnorm_mean = 0, dnorm_norm_mean = 0;
        for (int c = 0; c < C; ++c) {
          const float dn = d[c] * weight[c];
          dnorm_mean += dn;
          dnorm_norm_mean += static_cast<double>(dn) * ((x[c] - m) * r);
        }
        const float a = static_cast<float>(dnorm_mean / C);
        const float b = static_cast<float>(dnorm_norm_mean / C);
        float* di = dinp + n * C;
        for (int c = 0; c < C; ++c) {
          const float norm = (x[c] - m) * r;
          di[c] += (d[c] * weight[c] - a - norm * b) * r;
        }
      }
    });
    pool_.ParallelFor(C, 8, [&](int64_t c0, int64_t c1) {
      std::vector<double> dw(c1 - c0, 0.0), db(c1 - c0, 0.0);
      for (int64_t n = 0; n < N; ++n) {
        const float* x = inp + n * C;
        const float* d = dout + n * C;
        for (int64_t c = c0; c < c1; ++c) {
          dw[c - c0] += static_cast<double>((x[c] - mean[n]) * rstd[n]) * d[c];
          db[c - c0] += d[c];
        }
      }
      for (int64_t c = c0; c < c1; ++c) {
        dweight[c] += static_cast<float>(dw[c - c0]);
        dbias[c] += static_cast<float>(db[c - c0]);
      }
    });
  }

  // q, k, v of head h of sequence b are read in place from inp (B, T, 3C) with leading
  // dimension 3C; att (B, NH, T, T). qkvr is not needed on the CPU.
  void AttentionForward(float* out, float* /*qkvr*/, float* att, const float* inp, int B, int T, int C,
                        int NH) override {
    const int hs = C / NH;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
    const int64_t C3 = 3 * static_cast<int64_t>(C);
    for (int b = 0; b < B; ++b) {
      const float* q = inp + b * T * C3;
      float* a = att + static_cast<int64_t>(b) * NH * T * T;
      // preatt (NH, T, T) = scale * q · k^T
      SgemmStridedBatched(a, q, q + C, T, T, hs, false, true, scale, 0.0f, 3 * C, 3 * C, T, hs, hs,
                          static_cast<int64_t>(T) * T, NH);
    }
    pool_.ParallelFor(static_cast<int64_t>(B) * NH * T, 64, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int t = static_cast<int>(r % T);
        float* row = att + r * T;
        float mx = row[0];
        for (int j = 1; j <= t; ++j) mx = std::max(mx, row[j]);
        double sum = 0;
        for (int j = 0; j <= t; ++j) {
          row[j] = std::exp(row[j] - mx);
          sum += row[j];
        }
        const float inv = static_cast<float>(1.0 / sum);
        for (int j = 0; j <= t; ++j) row[j] *= inv;
        for (int j = t + 1; j < T; ++j) row[j] = 0.0f;
      }
    });
    for (int b = 0; b < B; ++b) {
      const float* v = inp + b * T * C3 + 2 * C;
      // y (NH, T, hs) = att · v, written into out (T, C) at column h*hs.
      SgemmStridedBatched(out + static_cast<int64_t>(b) * T * C, att + static_cast<int64_t>(b) * NH * T * T,
                          v, T, hs, T, false, false, 1.0f, 0.0f, T, 3 * C, C,
                          static_cast<int64_t>(T) * T, hs, hs, NH);
    }
  }

  void AttentionBackward(float* dinp, float* /*dqkvr*/, float* datt, float* /*dvaccum*/, const float* dout,
                         const float* inp, const float* /*qkvr*/, const float* att, int B, int T, int C,
                         int NH) override {
    const int hs = C / NH;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
    const int64_t C3 = 3 * static_cast<int64_t>(C);
    const int64_t TT = static_cast<int64_t>(T) * T;
    for (int b = 0; b < B; ++b) {
      const float* q = inp + b * T * C3;
      const float* dy = dout + static_cast<int64_t>(b) * T * C;
      const float* a = att + b * NH * TT;
      float* da = datt + b * NH * TT;
      float* dq = dinp + b * T * C3;
      // datt (NH, T, T) = dy · v^T; dv (NH, T, hs) = att^T · dy
      SgemmStridedBatched(da, dy, q + 2 * C, T, T, hs, false, true, 1.0f, 0.0f, C, 3 * C, T, hs, hs, TT, NH);
      SgemmStridedBatched(dq + 2 * C, a, dy, T, hs, T, true, false, 1.0f, 0.0f, T, C, 3 * C, TT, hs, hs, NH);
    }
    // softmax backward (causal rows), scaled: dpreatt = scale * att * (datt - <att, datt>)
    pool_.ParallelFor(static_cast<int64_t>(B) * NH * T, 64, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int t = static_cast<int>(r % T);
        const float* arow = att + r * T;
        float* drow = datt + r * T;
        double dot = 0;
        for (int j = 0; j <= t; ++j) dot += static_cast<double>(arow[j]) * drow[j];
        const float d = static_cast<float>(dot);
        for (int j = 0; j <= t; ++j) drow[j] = scale * arow[j] * (drow[j] - d);
        for (int j = t + 1; j < T; ++j) drow[j] = 0.0f;
      }
    });
    for (int b = 0; b < B; ++b) {
      const float* q = inp + b * T * C3;
      const float* da = datt + b * NH * TT;
      float* dq = dinp + b * T * C3;
      // dq = dpreatt · k; dk = dpreatt^T · q
      SgemmStridedBatched(dq, da, q + C, T, hs, T, false, false, 1.0f, 0.0f, T, 3 * C, 3 * C, TT, hs, hs, NH);
      SgemmStridedBatched(dq + C, da, q, T, hs, T, true, false, 1.0f, 0.0f, T, 3 * C, 3 * C, TT, hs, hs, NH);
    }
  }

  void SoftmaxCrossEntropyForward(float* losses, float* probs, const float* logits, const int32_t* targets,
                                  int N, int V) override {
    pool_.ParallelFor(N, 16, [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        const float* x = logits + n * V;
        float* p = probs + n * V;
        float mx = x[0];
        for (int j = 1; j < V; ++j) mx = std::max(mx, x[j]);
        double sum = 0;
        for (int j = 0; j < V; ++j) {
          p[j] = std::exp(x[j] - mx);
          sum += p[j];
        }
        const float inv = static_cast<float>(1.0 / sum);
        for (int j = 0; j < V; ++j) p[j] *= inv;
        losses[n] = static_cast<float>(std::log(sum) + mx - x[targets[n]]);
      }
    });
  }

  void SoftmaxCrossEntropyBackward(float* dlogits, const float* probs, const int32_t* targets, float dloss,
                                   int N, int V) override {
    pool_.ParallelFor(N, 16, [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        const float* p = probs + n * V;
        float* d = dlogits + n * V;
        for (int j = 0; j < V; ++j) d[j] = p[j] * dloss;
        d[targets[n]] = (p[targets[n]] - 1.0f) * dloss;
      }
    });
  }

  void RouterSoftmaxTop1(float* probs, int32_t* expert, float* gate, const float* logits, int N,
                         int E) override {
    pool_.ParallelFor(N, 64, [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        const float* x = logits + n * E;
        float* p = probs + n * E;
        float mx = x[0];
        for (int j = 1; j < E; ++j) mx = std::max(mx, x[j]);
        double sum = 0;
        for (int j = 0; j < E; ++j) {
          p[j] = std::exp(x[j] - mx);
          sum += p[j];
        }
        const float inv = static_cast<float>(1.0 / sum);
        int best = 0;
        for (int j = 0; j < E; ++j) {
          p[j] *= inv;
          if (p[j] > p[best]) best = j;
        }
        expert[n] = best;
        gate[n] = p[best];
      }
    });
  }

  void RouterAssign(int32_t* row, int32_t* counts, int32_t* kept, const int32_t* expert, int N, int E,
                    int capacity) override {
    std::fill(counts, counts + E, 0);
    std::fill(kept, kept + E, 0);
    for (int n = 0; n < N; ++n) {  // slot within the expert's bucket, in token order
      const int e = expert[n];
      ++counts[e];
      row[n] = kept[e] < capacity ? kept[e]++ : -1;
    }
    std::vector<int32_t> start(E, 0);
    for (int e = 1; e < E; ++e) start[e] = start[e - 1] + kept[e - 1];
    for (int n = 0; n < N; ++n) {
      if (row[n] >= 0) row[n] += start[expert[n]];
    }
  }

  void RouterLosses(float* losses, const float* probs, const float* logits, const int32_t* counts, int N,
                    int E, float alpha, float beta) override {
    std::vector<double> psum(E, 0.0);
    double zsum = 0;
    for (int n = 0; n < N; ++n) {
      const float* p = probs + static_cast<int64_t>(n) * E;
      for (int e = 0; e < E; ++e) psum[e] += p[e];
      const double lse = LogSumExp(logits + static_cast<int64_t>(n) * E, E);
      zsum += lse * lse;
    }
    double lb = 0;
    for (int e = 0; e < E; ++e) lb += (static_cast<double>(counts[e]) / N) * (psum[e] / N);
    losses[0] = static_cast<float>(alpha * E * lb);
    losses[1] = static_cast<float>(beta * zsum / N);
  }

  void RouterBackward(float* dlogits, const float* dgate, const float* probs, const float* logits,
                      const int32_t* expert, const int32_t* counts, int N, int E, float alpha, float beta,
                      float scale) override {
    std::vector<float> lb_grad(E);  // d(lb)/d(probs[n, i]) * scale, the same for every n
    for (int e = 0; e < E; ++e) {
      lb_grad[e] = static_cast<float>(static_cast<double>(scale) * alpha * E * counts[e] / N / N);
    }
    pool_.ParallelFor(N, 64, [&](int64_t n0, int64_t n1) {
      std::vector<float> g(E);
      for (int64_t n = n0; n < n1; ++n) {
        const float* p = probs + n * E;
        float* d = dlogits + n * E;
        double gp = 0;
        for (int e = 0; e < E; ++e) {
          g[e] = lb_grad[e] + (e == expert[n] ? dgate[n] : 0.0f);
          gp += static_cast<double>(g[e]) * p[e];
        }
        const float zc = static_cast<float>(static_cast<double>(scale) * beta * 2.0 *
                                            LogSumExp(logits + n * E, E) / N);
        for (int e = 0; e < E; ++e) d[e] = p[e] * (g[e] - static_cast<float>(gp)) + zc * p[e];
      }
    });
  }

  void DispatchForward(float* buckets, const float* inp, const int32_t* row, int N, int C) override {
    pool_.ParallelFor(N, 64, [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        if (row[n] >= 0) std::memcpy(buckets + static_cast<int64_t>(row[n]) * C, inp + n * C, C * sizeof(float));
      }
    });
  }

  void DispatchBackward(float* dinp, const float* dbuckets, const int32_t* row, int N, int C) override {
    pool_.ParallelFor(N, 64, [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        if (row[n] >= 0) {
          std::memcpy(dinp + n * C, dbuckets + static_cast<int64_t>(row[n]) * C, C * sizeof(float));
        } else {
          std::memset(dinp + n * C, 0, C * sizeof(float));
        }
      }
    });
  }

  void CombineForward(float* out, const float* buckets, const int32_t* row, const float* gate, int N,
                      int C) override {
    pool_.ParallelFor(N, 64, [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        float* o = out + n * C;
        if (row[n] < 0) {
          std::memset(o, 0, C * sizeof(float));
          continue;
        }
        const float* x = buckets + static_cast<int64_t>(row[n]) * C;
        for (int c = 0; c < C; ++c) o[c] = gate[n] * x[c];
      }
    });
  }

  void CombineBackward(float* dbuckets, float* dgate, const float* dout, const float* buckets,
                       const int32_t* row, const float* gate, int N, int C) override {
    pool_.ParallelFor(N, 64, [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        if (row[n] < 0) {
          dgate[n] = 0.0f;
          continue;
        }
        const float* d = dout + n * C;
        const float* x = buckets + static_cast<int64_t>(row[n]) * C;
        float* db = dbuckets + static_cast<int64_t>(row[n]) * C;
        double dot = 0;
        for (int c = 0; c < C; ++c) {
          dot += static_cast<double>(d[c]) * x[c];
          db[c] = gate[n] * d[c];
        }
        dgate[n] = static_cast<float>(dot);
      }
    });
  }

  void AdamWUpdate(float* param, float* m, float* v, const float* grad, int64_t n, float lr, float beta1,
                   float beta2, float eps, float weight_decay, float grad_scale, int64_t t) override {
    const double bc1 = 1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(t));
    const double bc2 = 1.0 - std::pow(static_cast<double>(beta2), static_cast<double>(t));
    const float step_size = static_cast<float>(lr / bc1);
    const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
    const float decay = 1.0f - lr * weight_decay;
    pool_.ParallelFor(n, kGrain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const float g = grad[i] * grad_scale;
        param[i] *= decay;
        m[i] = beta1 * m[i] + (1.0f - beta1) * g;
        v[i] = beta2 * v[i] + (1.0f - beta2) * g * g;
        param[i] -= step_size * m[i] / (std::sqrt(v[i]) / bc2_sqrt + eps);
      }
    });
  }

  absl::StatusOr<double> SumSquares(const float* x, int64_t n) override {
    constexpr int64_t kChunk = 8192;  // fixed chunking: the order does not depend on threads
    const int64_t chunks = (n + kChunk - 1) / kChunk;
    std::vector<double> partial(chunks, 0.0);
    pool_.ParallelFor(chunks, 1, [&](int64_t c0, int64_t c1) {
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

 private:
  static double LogSumExp(const float* x, int n) {
    float mx = x[0];
    for (int j = 1; j < n; ++j) mx = std::max(mx, x[j]);
    double sum = 0;
    for (int j = 0; j < n; ++j) sum += std::exp(static_cast<double>(x[j]) - mx);
    return std::log(sum) + mx;
  }

  void DropoutApply(float* out, const float* inp, int64_t n, float rate, const RngKey& key) {
    if (rate <= 0.0f) {
      if (out != inp) std::memmove(out, inp, n * sizeof(float));
      return;
    }
    const float keep_scale = 1.0f / (1.0f - rate);
    pool_.ParallelFor(n, kGrain, [&](int64_t i0, int64_t i1) {
      ForEachUniformChunk(key, i0, i1, [&](int64_t i, int len, const float* u) {
        float* o = out + i;  // may alias x (in-place dropout): element k reads x[k] before writing o[k]
        const float* x = inp + i;
        const float r = rate, scale = keep_scale;
        for (int k = 0; k < len; ++k) o[k] = u[k] >= r ? x[k] * scale : 0.0f;
      });
    });
  }

  ThreadPool pool_;
};

}  // namespace

std::unique_ptr<Backend> CreateCpuBackend(const BackendOptions& options) {
  int threads = options.num_threads;
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::make_unique<CpuBackend>(threads);
}

}  // namespace sy::gpu
