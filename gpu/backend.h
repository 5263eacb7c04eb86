// The compute backend: device memory plus every op the model needs, as plain
// functions of raw device pointers with explicit shapes (outputs first; each
// pointer carries its shape in a comment). The model calls ONLY this interface, so
// the CPU backend (gpu/cpu/, the readable reference) and the CUDA backend
// (gpu/cuda/) run the same model. All tensors are row-major f32 unless noted.
//
// Determinism contract: for a given backend kind, every op's result is a pure
// function of its inputs (independent of thread count and run), with fixed
// reduction orders. Ops marked "+=" accumulate into their output; all others
// overwrite it. Output and input pointers never alias unless the op says so.
//
// Thread-safety: one Backend is used by one thread at a time (ops may use an
// internal thread pool or stream). Ops return nothing: shapes are validated by
// the callers (the layer code), so the backend stays a thin numeric layer; memory
// ops that can fail return absl::Status.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/base/philox.h"
#include "gpu/rng_key.h"
#include "gpu/tensor.h"

namespace sy::gpu {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;

  // ---- memory (device memory; host pointers are ordinary CPU memory) ----
  // One contiguous block of `bytes` (64-byte aligned at least), uninitialised.
  virtual absl::StatusOr<void*> Alloc(size_t bytes) = 0;
  virtual void Free(void* ptr) = 0;
  virtual absl::Status CopyHostToDevice(void* dst, const void* src, size_t bytes) = 0;
  virtual absl::Status CopyDeviceToHost(void* dst, const void* src, size_t bytes) = 0;
  virtual absl::Status CopyDeviceToDevice(void* dst, const void* src, size_t bytes) = 0;
  virtual absl::Status Zero(void* ptr, size_t bytes) = 0;
  // Waits for all queued work (no-op on CPU).
  virtual absl::Status Synchronize() = 0;
  // Calls task(i) for every i in [0, n), possibly concurrently, each task running
  // this backend's ops on its own thread (the CPU backend runs independent small
  // products side by side instead of splitting each over its threads). Tasks must
  // write disjoint outputs; results are the same as calling them in order. The
  // default calls them in order.
  virtual void RunIndependent(int64_t n, const std::function<void(int64_t)>& task) {
    for (int64_t i = 0; i < n; ++i) task(i);
  }

  // ---- GEMM ----
  // c (m, n) = alpha * op(a) · op(b) + beta * c, row-major; op(a) is (m, k): a is
  // (m, k) with leading dim lda, or (k, m) when trans_a; op(b) is (k, n): b is (k, n)
  // with leading dim ldb, or (n, k) when trans_b. ldc is c's leading dim.
  virtual void Sgemm(float* c, const float* a, const float* b, int m, int n, int k,
                     bool trans_a, bool trans_b, float alpha, float beta, int lda, int ldb,
                     int ldc) = 0;
  // `batch` independent Sgemm calls; matrix i uses a + i*stride_a, b + i*stride_b,
  // c + i*stride_c (strides in elements).
  virtual void SgemmStridedBatched(float* c, const float* a, const float* b, int m, int n,
                                   int k, bool trans_a, bool trans_b, float alpha, float beta,
                                   int lda, int ldb, int ldc, int64_t stride_a,
                                   int64_t stride_b, int64_t stride_c, int batch) = 0;
  // out (rows, cols) += bias (cols) broadcast over rows.
  virtual void AddBias(float* out, const float* bias, int rows, int cols) = 0;
  // dbias (cols) += sum over rows of dout (rows, cols), rows summed in order.
  virtual void BiasBackward(float* dbias, const float* dout, int rows, int cols) = 0;

  // ---- elementwise ----
  // out (n) = a (n) + b (n). out may alias a or b.
  virtual void Add(float* out, const float* a, const float* b, int64_t n) = 0;
  // x (n) *= s.
  virtual void Scale(float* x, float s, int64_t n) = 0;
  // GELU, tanh approximation (torch gelu(approximate='tanh')): out (n) = gelu(inp (n)).
  virtual void GeluForward(float* out, const float* inp, int64_t n) = 0;
  // dinp (n) = gelu'(inp (n)) * dout (n). dinp may alias dout.
  virtual void GeluBackward(float* dinp, const float* inp, const float* dout, int64_t n) = 0;
  // Inverted dropout: element i is kept when Uniform(key.offset + i) >= rate and
  // then scaled by 1/(1-rate); out (n) from inp (n). rate 0 copies. out may alias inp.
  virtual void DropoutForward(float* out, const float* inp, int64_t n, float rate,
                              const RngKey& key) = 0;
  // dinp (n) = dout (n) through the same mask (regenerated from key). May alias.
  virtual void DropoutBackward(float* dinp, const float* dout, int64_t n, float rate,
                               const RngKey& key) = 0;
  // Multiplicative jitter: noise (n) = 1 - eps + 2*eps*Uniform(key.offset + i),
  // out (n) = inp * noise.
  virtual void JitterForward(float* out, float* noise, const float* inp, int64_t n, float eps,
                             const RngKey& key) = 0;
  // out (n) = a (n) * b (n). out may alias a.
  virtual void Multiply(float* out, const float* a, const float* b, int64_t n) = 0;
  // x (n) rounded in place to the nearest bf16 values, kept as f32 (RoundedBf16Bits:
  // the same bits on every backend).
  virtual void RoundToBf16(float* x, int64_t n) = 0;

  // ---- embedding ----
  // out (B*T, C) = wte[tokens[n]] (V, C) + wpe[n % T] (T, C); tokens (B*T) int32 in [0, V).
  virtual void EncoderForward(float* out, const int32_t* tokens, const float* wte,
                              const float* wpe, int B, int T, int C) = 0;
  // dwte (V, C) +=, dwpe (T, C) += from dout (B*T, C); tokens summed in order n = 0..B*T-1.
  virtual void EncoderBackward(float* dwte, float* dwpe, const float* dout,
                               const int32_t* tokens, int B, int T, int C) = 0;

  // ---- layernorm (eps 1e-5, biased variance) ----
  // out (N, C), mean (N), rstd (N) from inp (N, C), weight (C), bias (C).
  virtual void LayerNormForward(float* out, float* mean, float* rstd, const float* inp,
                                const float* weight, const float* bias, int N, int C) = 0;
  // dinp (N, C) +=, dweight (C) +=, dbias (C) += from dout (N, C), inp (N, C),
  // weight (C), mean (N), rstd (N).
  virtual void LayerNormBackward(float* dinp, float* dweight, float* dbias, const float* dout,
                                 const float* inp, const float* weight, const float* mean,
                                 const float* rstd, int N, int C) = 0;

  // ---- causal multi-head attention (head size hs = C/NH) ----
  // inp (B, T, 3C) holds q | k | v; out (B, T, C) = per head softmax(q·k^T/sqrt(hs)) v,
  // causal. Scratch: qkvr (3, B, NH, T, hs); att (B, NH, T, T) keeps the softmax
  // (saved for backward; entries above the diagonal are 0).
  virtual void AttentionForward(float* out, float* qkvr, float* att, const float* inp, int B,
                                int T, int C, int NH) = 0;
  // dinp (B, T, 3C) = gradient wrt inp (overwrite) from dout (B, T, C), using the
  // forward's inp (B, T, 3C), qkvr and att. Scratch: dqkvr (3, B, NH, T, hs),
  // datt (B, NH, T, T), dvaccum (B, T, C).
  virtual void AttentionBackward(float* dinp, float* dqkvr, float* datt, float* dvaccum,
                                 const float* dout, const float* inp, const float* qkvr,
                                 const float* att, int B, int T, int C, int NH) = 0;

  // ---- softmax + cross-entropy ----
  // probs (N, V) = softmax(logits (N, V)); losses (N) = -log probs[n, targets[n]].
  virtual void SoftmaxCrossEntropyForward(float* losses, float* probs, const float* logits,
                                          const int32_t* targets, int N, int V) = 0;
  // dlogits (N, V) = (probs - onehot(targets)) * dloss (same scalar for every token,
  // e.g. grad_scale / N for a mean loss).
  virtual void SoftmaxCrossEntropyBackward(float* dlogits, const float* probs,
                                           const int32_t* targets, float dloss, int N,
                                           int V) = 0;

  // ---- Switch router ----
  // probs (N, E) = softmax(logits (N, E)); expert (N) int32 = argmax (ties: lowest
  // index); gate (N) = probs[n, expert[n]].
  virtual void RouterSoftmaxTop1(float* probs, int32_t* expert, float* gate,
                                 const float* logits, int N, int E) = 0;
  // Capacity assignment in token order: counts (E) int32 = tokens whose argmax is e
  // (before capacity); kept (E) int32 = min(counts, capacity) admitted in order
  // n = 0..N-1; row (N) int32 = the token's row in the packed bucket buffer, where
  // expert e's bucket starts at sum_{e' < e} kept[e'] and holds its tokens in token
  // order; -1 for a dropped token. expert (N) int32 in [0, E).
  virtual void RouterAssign(int32_t* row, int32_t* counts, int32_t* kept,
                            const int32_t* expert, int N, int E, int capacity) = 0;
  // losses (2): losses[0] = alpha * E * sum_i f_i * P_i with f_i = counts[i] / N,
  // P_i = mean_n probs[n, i]; losses[1] = beta * mean_n logsumexp(logits[n])^2.
  // probs (N, E), logits (N, E), counts (E) int32.
  virtual void RouterLosses(float* losses, const float* probs, const float* logits,
                            const int32_t* counts, int N, int E, float alpha, float beta) = 0;
  // dlogits (N, E) (overwrite) = scale * d(lb + z)/dlogits + d(gate)/dlogits * dgate[n],
  // from dgate (N) (gradient wrt gate[n]; 0 for dropped tokens), probs (N, E),
  // logits (N, E), expert (N) int32, counts (E) int32 (f_i carries no gradient).
  virtual void RouterBackward(float* dlogits, const float* dgate, const float* probs,
                              const float* logits, const int32_t* expert,
                              const int32_t* counts, int N, int E, float alpha, float beta,
                              float scale) = 0;
  // Gather: buckets (rows, C) row row[n] = inp (N, C) row n for admitted tokens
  // (row (N) int32, -1 = dropped). rows = total admitted tokens.
  virtual void DispatchForward(float* buckets, const float* inp, const int32_t* row, int N,
                               int C) = 0;
  // dinp (N, C) (overwrite) = dbuckets[row[n]] or 0 for dropped tokens.
  virtual void DispatchBackward(float* dinp, const float* dbuckets, const int32_t* row, int N,
                                int C) = 0;
  // Scatter with gate scaling: out (N, C) = gate[n] * buckets[row[n]] (0 when dropped).
  virtual void CombineForward(float* out, const float* buckets, const int32_t* row,
                              const float* gate, int N, int C) = 0;
  // dbuckets (rows, C) row row[n] = gate[n] * dout[n]; dgate (N) = dot(dout[n],
  // buckets[row[n]]) (0 when dropped). dout (N, C), buckets (rows, C), gate (N).
  virtual void CombineBackward(float* dbuckets, float* dgate, const float* dout,
                               const float* buckets, const int32_t* row, const float* gate,
                               int N, int C) = 0;

  // ---- optimizer ----
  // torch.optim.AdamW on n elements: param, m, v (n) updated in place from
  // grad (n) * grad_scale; step t >= 1 for bias correction.
  // p -= lr*wd*p; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;
  // p -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps).
  virtual void AdamWUpdate(float* param, float* m, float* v, const float* grad, int64_t n,
                           float lr, float beta1, float beta2, float eps, float weight_decay,
                           float grad_scale, int64_t t) = 0;
  // Sum of squares of x (n) in a fixed order (in double), returned to the host.
  virtual absl::StatusOr<double> SumSquares(const float* x, int64_t n) = 0;
};

// Options for creating a backend.
struct BackendOptions {
  int num_threads = 0;  // CPU threads (0 = hardware concurrency).
};

// Creates the backend for `device`: "cpu" always; "cuda:N" when the build has the
// CUDA backend (else kUnimplemented) and the device exists (else kFailedPrecondition).
// Defined in gpu/backend_factory.cc (target sy_gpu_factory).
absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(const Device& device,
                                                       const BackendOptions& options = {});

// Implemented by the CUDA backend library (target sy_gpu_cuda, gpu/cuda/), when built.
absl::StatusOr<std::unique_ptr<Backend>> CreateCudaBackend(int device_index,
                                                           const BackendOptions& options);

}  // namespace sy::gpu
