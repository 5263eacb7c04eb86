// The CPU reference backend (see cpu_backend.h): OpenBLAS for products, plain loops
// over a fork-join pool for everything else. Reductions that cross threads are
// avoided: each output element is owned by one chunk and summed in a fixed order
// (in double where the sum is long), so results do not depend on the thread count.
// This file holds the backend itself: memory, the products and attention (products
// around a causal softmax); the other loops live by concern behind cpu_ops.h.
#include "gpu/cpu/cpu_backend.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gpu/attention_gemms.h"
#include "gpu/cpu/cpu_ops.h"
#include "gpu/cpu/exact_exp.h"
#include "gpu/cpu/thread_pool.h"

namespace sy::gpu {
namespace {

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
  // Each task on one thread: its products are cut into the same blocks as outside a
  // task and run one after another there, so they give the same bits.
  void RunIndependent(int64_t n, const std::function<void(int64_t)>& task) override {
    pool_.ForEachIndex(n, task);
  }

  // Products are cut into FIXED blocks of rows (or columns, whichever dimension is
  // larger): at most kGemmMaxBlocks blocks, each a multiple of kGemmBlock, shared out
  // by the threads. The cut depends only on the shape, so results are the same for
  // any thread count. Inside a RunIndependent task the blocks run one after another on
  // the task's thread. (Whether OpenBLAS gives the same bits for a product whole and cut
  // into blocks depends on the CPU's kernels: on AVX-512 machines it does not.)
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
    const bool split_rows = m >= n;
    const int extent = split_rows ? m : n;
    const int units = (extent + kGemmBlock - 1) / kGemmBlock;
    const int block = kGemmBlock * ((units + kGemmMaxBlocks - 1) / kGemmMaxBlocks);
    const int64_t blocks = (extent + block - 1) / block;
    if (work < kGemmSplitWork || std::max(m, n) <= kGemmBlock) {
      BlasGemm(c, a, b, m, n, k, trans_a, trans_b, alpha, beta, lda, ldb, ldc);
      return;
    }
    auto run_blocks = [&](int64_t b0, int64_t b1) {
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
    };
    if (pool_.InsideBody()) {
      run_blocks(0, blocks);
    } else {
      pool_.ParallelFor(blocks, 1, run_blocks);
    }
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
    cpu::AddBias(pool_, out, bias, rows, cols);
  }
  void BiasBackward(float* dbias, const float* dout, int rows, int cols) override {
    cpu::BiasBackward(pool_, dbias, dout, rows, cols);
  }
  void Add(float* out, const float* a, const float* b, int64_t n) override { cpu::Add(pool_, out, a, b, n); }
  void Scale(float* x, float s, int64_t n) override { cpu::Scale(pool_, x, s, n); }
  void Multiply(float* out, const float* a, const float* b, int64_t n) override { cpu::Multiply(pool_, out, a, b, n); }
  void RoundToBf16(float* x, int64_t n) override { cpu::RoundToBf16(pool_, x, n); }
  void GeluForward(float* out, const float* inp, int64_t n) override { cpu::GeluForward(pool_, out, inp, n); }
  void GeluBackward(float* dinp, const float* inp, const float* dout, int64_t n) override {
    cpu::GeluBackward(pool_, dinp, inp, dout, n);
  }
  void DropoutForward(float* out, const float* inp, int64_t n, float rate, const RngKey& key) override {
    cpu::DropoutApply(pool_, out, inp, n, rate, key);
  }
  void DropoutBackward(float* dinp, const float* dout, int64_t n, float rate, const RngKey& key) override {
    cpu::DropoutApply(pool_, dinp, dout, n, rate, key);
  }
  void JitterForward(float* out, float* noise, const float* inp, int64_t n, float eps,
                     const RngKey& key) override {
    cpu::JitterForward(pool_, out, noise, inp, n, eps, key);
  }

  void EncoderForward(float* out, const int32_t* tokens, const float* wte, const float* wpe, int B,
                      int T, int C) override {
    cpu::EncoderForward(pool_, out, tokens, wte, wpe, B, T, C);
  }
  void EncoderBackward(float* dwte, float* dwpe, const float* dout, const int32_t* tokens, int B, int T,
                       int C) override {
    cpu::EncoderBackward(pool_, dwte, dwpe, dout, tokens, B, T, C);
  }
  void LayerNormForward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                        const float* bias, int N, int C) override {
    cpu::LayerNormForward(pool_, out, mean, rstd, inp, weight, bias, N, C);
  }
  void LayerNormBackward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                         const float* weight, const float* mean, const float* rstd, int N,
                         int C) override {
    cpu::LayerNormBackward(pool_, dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
  }

  // The products are gpu/attention_gemms.h's; qkvr is not needed on the CPU.
  void AttentionForward(float* out, float* /*qkvr*/, float* att, const float* inp, int B, int T, int C,
                        int NH) override {
    const AttentionShape shape{B, T, C, NH};
    AttentionScores(*this, att, inp, shape);
    pool_.ParallelFor(static_cast<int64_t>(B) * NH * T, 64, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int t = static_cast<int>(r % T);
        float* row = att + r * T;
        const float inv = static_cast<float>(1.0 / cpu::ExpShiftedRowVectorised(row, row, t + 1).sum);
        for (int j = 0; j <= t; ++j) row[j] *= inv;
        for (int j = t + 1; j < T; ++j) row[j] = 0.0f;
      }
    });
    AttentionValues(*this, out, att, inp, shape);
  }

  void AttentionBackward(float* dinp, float* /*dqkvr*/, float* datt, float* /*dvaccum*/, const float* dout,
                         const float* inp, const float* /*qkvr*/, const float* att, int B, int T, int C,
                         int NH) override {
    const AttentionShape shape{B, T, C, NH};
    const float scale = shape.scale();
    AttentionValuesBackward(*this, dinp, datt, dout, inp, att, shape);
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
    AttentionScoresBackward(*this, dinp, datt, inp, shape);
  }

  void SoftmaxCrossEntropyForward(float* losses, float* probs, const float* logits, const int32_t* targets,
                                  int N, int V) override {
    cpu::SoftmaxCrossEntropyForward(pool_, losses, probs, logits, targets, N, V);
  }
  void SoftmaxCrossEntropyBackward(float* dlogits, const float* probs, const int32_t* targets, float dloss,
                                   int N, int V) override {
    cpu::SoftmaxCrossEntropyBackward(pool_, dlogits, probs, targets, dloss, N, V);
  }
  void RouterSoftmaxTop1(float* probs, int32_t* expert, float* gate, const float* logits, int N,
                         int E) override {
    cpu::RouterSoftmaxTop1(pool_, probs, expert, gate, logits, N, E);
  }
  void RouterAssign(int32_t* row, int32_t* counts, int32_t* kept, const int32_t* expert, int N, int E,
                    int capacity) override {
    cpu::RouterAssign(row, counts, kept, expert, N, E, capacity);
  }
  void RouterLosses(float* losses, const float* probs, const float* logits, const int32_t* counts, int N,
                    int E, float alpha, float beta) override {
    cpu::RouterLosses(losses, probs, logits, counts, N, E, alpha, beta);
  }
  void RouterBackward(float* dlogits, const float* dgate, const float* probs, const float* logits,
                      const int32_t* expert, const int32_t* counts, int N, int E, float alpha, float beta,
                      float scale) override {
    cpu::RouterBackward(pool_, dlogits, dgate, probs, logits, expert, counts, N, E, alpha, beta, scale);
  }
  void DispatchForward(float* buckets, const float* inp, const int32_t* row, int N, int C) override {
    cpu::DispatchForward(pool_, buckets, inp, row, N, C);
  }
  void DispatchBackward(float* dinp, const float* dbuckets, const int32_t* row, int N, int C) override {
    cpu::DispatchBackward(pool_, dinp, dbuckets, row, N, C);
  }
  void CombineForward(float* out, const float* buckets, const int32_t* row, const float* gate, int N,
                      int C) override {
    cpu::CombineForward(pool_, out, buckets, row, gate, N, C);
  }
  void CombineBackward(float* dbuckets, float* dgate, const float* dout, const float* buckets,
                       const int32_t* row, const float* gate, int N, int C) override {
    cpu::CombineBackward(pool_, dbuckets, dgate, dout, buckets, row, gate, N, C);
  }

  void AdamWUpdate(float* param, float* m, float* v, const float* grad, int64_t n, float lr, float beta1,
                   float beta2, float eps, float weight_decay, float grad_scale, int64_t t) override {
    cpu::AdamWUpdate(pool_, param, m, v, grad, n, lr, beta1, beta2, eps, weight_decay, grad_scale, t);
  }
  absl::StatusOr<double> SumSquares(const float* x, int64_t n) override { return cpu::SumSquares(pool_, x, n); }

 private:
  ThreadPool pool_;
};

}  // namespace

std::unique_ptr<Backend> CreateCpuBackend(const BackendOptions& options) {
  int threads = options.num_threads;
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::make_unique<CpuBackend>(threads);
}

}  // namespace sy::gpu
