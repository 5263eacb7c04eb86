// The CUDA backend: the Backend interface of gpu/backend.h on one GPU, with
// cuBLAS for every product (row-major through the transpose identity
// C^T = op(B)^T op(A)^T) and the kernels of gpu/cuda/*.cu for the rest, all
// queued on one stream. It mirrors the CPU reference (gpu/cpu/) op for op,
// including the sequence of GEMMs in attention. Void ops cannot return errors:
// the first failure (with file and line) is kept and returned by the next
// status-returning call. One thread uses a backend at a time.
#include <cmath>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gpu/attention_gemms.h"
#include "gpu/backend.h"
#include "gpu/cuda/attention.cuh"
#include "gpu/cuda/cuda_check.cuh"
#include "gpu/cuda/elementwise.cuh"
#include "gpu/cuda/encoder.cuh"
#include "gpu/cuda/layernorm.cuh"
#include "gpu/cuda/reduce.cuh"
#include "gpu/cuda/router.cuh"
#include "gpu/cuda/softmax_ce.cuh"

namespace sy::gpu {
namespace {

using cuda::CudaResult;

cublasOperation_t Op(bool trans) { return trans ? CUBLAS_OP_T : CUBLAS_OP_N; }

class CudaBackend : public Backend {
 public:
  CudaBackend(int index, cudaStream_t stream, cublasHandle_t cublas)
      : index_(index), stream_(stream), cublas_(cublas) {}
  ~CudaBackend() override {
    cudaSetDevice(index_);
    if (partials_ != nullptr) cudaFree(partials_);
    cublasDestroy(cublas_);
    cudaStreamDestroy(stream_);
  }

  Device device() const override { return Device::Cuda(index_); }

  absl::StatusOr<void*> Alloc(size_t bytes) override {
    if (absl::Status s = Activate(); !s.ok()) return s;
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, bytes > 0 ? bytes : 1);
    if (e != cudaSuccess) {
      cudaGetLastError();  // an out-of-memory error is not sticky: clear it
      return absl::ResourceExhaustedError(
          absl::StrCat("cudaMalloc of ", bytes, " bytes on cuda:", index_, ": ", cudaGetErrorString(e)));
    }
    return p;
  }
  void Free(void* ptr) override {
    if (ptr == nullptr) return;
    cudaSetDevice(index_);
    Record(cuda::CudaErrorAt(cudaStreamSynchronize(stream_), __FILE__, __LINE__));
    Record(cuda::CudaErrorAt(cudaFree(ptr), __FILE__, __LINE__));
  }
  absl::Status CopyHostToDevice(void* dst, const void* src, size_t bytes) override {
    return Copy(dst, src, bytes, cudaMemcpyHostToDevice, /*wait=*/true);
  }
  absl::Status CopyDeviceToHost(void* dst, const void* src, size_t bytes) override {
    return Copy(dst, src, bytes, cudaMemcpyDeviceToHost, /*wait=*/true);
  }
  absl::Status CopyDeviceToDevice(void* dst, const void* src, size_t bytes) override {
    return Copy(dst, src, bytes, cudaMemcpyDeviceToDevice, /*wait=*/false);
  }
  absl::Status Zero(void* ptr, size_t bytes) override {
    if (absl::Status s = Activate(); !s.ok()) return s;
    if (bytes > 0) Record(cuda::CudaErrorAt(cudaMemsetAsync(ptr, 0, bytes, stream_), __FILE__, __LINE__));
    return FirstError();
  }
  absl::Status Synchronize() override {
    if (absl::Status s = Activate(); !s.ok()) return s;
    Record(cuda::CudaErrorAt(cudaStreamSynchronize(stream_), __FILE__, __LINE__));
    return FirstError();
  }

  void Sgemm(float* c, const float* a, const float* b, int m, int n, int k, bool trans_a, bool trans_b, float alpha,
             float beta, int lda, int ldb, int ldc) override {
    if (m <= 0 || n <= 0 || !Activate().ok()) return;
    // Row-major C (m, n) is column-major C^T (n, m) = op(B)^T (n, k) · op(A)^T (k, m).
    Record(SY_CUBLAS_RESULT(
        cublasSgemm(cublas_, Op(trans_b), Op(trans_a), n, m, k, &alpha, b, ldb, a, lda, &beta, c, ldc)));
  }

  void SgemmStridedBatched(float* c, const float* a, const float* b, int m, int n, int k, bool trans_a, bool trans_b,
                           float alpha, float beta, int lda, int ldb, int ldc, int64_t stride_a, int64_t stride_b,
                           int64_t stride_c, int batch) override {
    if (m <= 0 || n <= 0 || batch <= 0 || !Activate().ok()) return;
    Record(SY_CUBLAS_RESULT(cublasSgemmStridedBatched(cublas_, Op(trans_b), Op(trans_a), n, m, k, &alpha, b, ldb,
                                                      stride_b, a, lda, stride_a, &beta, c, ldc, stride_c, batch)));
  }

  void AddBias(float* out, const float* bias, int rows, int cols) override {
    Run(cuda::LaunchAddBias(out, bias, rows, cols, stream_));
  }
  void BiasBackward(float* dbias, const float* dout, int rows, int cols) override {
    Run(cuda::LaunchBiasBackward(dbias, dout, rows, cols, stream_));
  }
  void Add(float* out, const float* a, const float* b, int64_t n) override {
    Run(cuda::LaunchAdd(out, a, b, n, stream_));
  }
  void Scale(float* x, float s, int64_t n) override { Run(cuda::LaunchScale(x, s, n, stream_)); }
  void GeluForward(float* out, const float* inp, int64_t n) override {
    Run(cuda::LaunchGeluForward(out, inp, n, stream_));
  }
  void GeluBackward(float* dinp, const float* inp, const float* dout, int64_t n) override {
    Run(cuda::LaunchGeluBackward(dinp, inp, dout, n, stream_));
  }
  void DropoutForward(float* out, const float* inp, int64_t n, float rate, const RngKey& key) override {
    Dropout(out, inp, n, rate, key);
  }
  void DropoutBackward(float* dinp, const float* dout, int64_t n, float rate, const RngKey& key) override {
    Dropout(dinp, dout, n, rate, key);
  }
  void JitterForward(float* out, float* noise, const float* inp, int64_t n, float eps, const RngKey& key) override {
    Run(cuda::LaunchJitter(out, noise, inp, n, eps, key, stream_));
  }
  void Multiply(float* out, const float* a, const float* b, int64_t n) override {
    Run(cuda::LaunchMultiply(out, a, b, n, stream_));
  }
  void RoundToBf16(float* x, int64_t n) override { Run(cuda::LaunchRoundToBf16(x, n, stream_)); }

  void EncoderForward(float* out, const int32_t* tokens, const float* wte, const float* wpe, int B, int T,
                      int C) override {
    Run(cuda::LaunchEncoderForward(out, tokens, wte, wpe, B, T, C, stream_));
  }
  void EncoderBackward(float* dwte, float* dwpe, const float* dout, const int32_t* tokens, int B, int T,
                       int C) override {
    Run(cuda::LaunchEncoderBackward(dwte, dwpe, dout, tokens, B, T, C, kVocab, stream_));
  }

  void LayerNormForward(float* out, float* mean, float* rstd, const float* inp, const float* weight, const float* bias,
                        int N, int C) override {
    Run(cuda::LaunchLayerNormForward(out, mean, rstd, inp, weight, bias, N, C, stream_));
  }
  void LayerNormBackward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                         const float* weight, const float* mean, const float* rstd, int N, int C) override {
    Run(cuda::LaunchLayerNormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C, stream_));
  }

  // The same products as the CPU reference (gpu/attention_gemms.h) around the causal softmax kernels.
  void AttentionForward(float* out, float* /*qkvr*/, float* att, const float* inp, int B, int T, int C,
                        int NH) override {
    const AttentionShape shape{B, T, C, NH};
    AttentionScores(*this, att, inp, shape);
    Run(cuda::LaunchCausalSoftmaxForward(att, static_cast<int64_t>(B) * NH * T, T, stream_));
    AttentionValues(*this, out, att, inp, shape);
  }

  void AttentionBackward(float* dinp, float* /*dqkvr*/, float* datt, float* /*dvaccum*/, const float* dout,
                         const float* inp, const float* /*qkvr*/, const float* att, int B, int T, int C,
                         int NH) override {
    const AttentionShape shape{B, T, C, NH};
    AttentionValuesBackward(*this, dinp, datt, dout, inp, att, shape);
    Run(cuda::LaunchCausalSoftmaxBackward(datt, att, static_cast<int64_t>(B) * NH * T, T, shape.scale(), stream_));
    AttentionScoresBackward(*this, dinp, datt, inp, shape);
  }

  void SoftmaxCrossEntropyForward(float* losses, float* probs, const float* logits, const int32_t* targets, int N,
                                  int V) override {
    Run(cuda::LaunchSoftmaxCrossEntropyForward(losses, probs, logits, targets, N, V, stream_));
  }
  void SoftmaxCrossEntropyBackward(float* dlogits, const float* probs, const int32_t* targets, float dloss, int N,
                                   int V) override {
    Run(cuda::LaunchSoftmaxCrossEntropyBackward(dlogits, probs, targets, dloss, N, V, stream_));
  }

  void RouterSoftmaxTop1(float* probs, int32_t* expert, float* gate, const float* logits, int N, int E) override {
    Run(cuda::LaunchRouterSoftmaxTop1(probs, expert, gate, logits, N, E, stream_));
  }
  void RouterAssign(int32_t* row, int32_t* counts, int32_t* kept, const int32_t* expert, int N, int E,
                    int capacity) override {
    Run(cuda::LaunchRouterAssign(row, counts, kept, expert, N, E, capacity, stream_));
  }
  void RouterLosses(float* losses, const float* probs, const float* logits, const int32_t* counts, int N, int E,
                    float alpha, float beta) override {
    Run(cuda::LaunchRouterLosses(losses, probs, logits, counts, N, E, alpha, beta, stream_));
  }
  void RouterBackward(float* dlogits, const float* dgate, const float* probs, const float* logits,
                      const int32_t* expert, const int32_t* counts, int N, int E, float alpha, float beta,
                      float scale) override {
    Run(cuda::LaunchRouterBackward(dlogits, dgate, probs, logits, expert, counts, N, E, alpha, beta, scale, stream_));
  }
  void DispatchForward(float* buckets, const float* inp, const int32_t* row, int N, int C) override {
    Run(cuda::LaunchDispatchForward(buckets, inp, row, N, C, stream_));
  }
  void DispatchBackward(float* dinp, const float* dbuckets, const int32_t* row, int N, int C) override {
    Run(cuda::LaunchDispatchBackward(dinp, dbuckets, row, N, C, stream_));
  }
  void CombineForward(float* out, const float* buckets, const int32_t* row, const float* gate, int N,
                      int C) override {
    Run(cuda::LaunchCombineForward(out, buckets, row, gate, N, C, stream_));
  }
  void CombineBackward(float* dbuckets, float* dgate, const float* dout, const float* buckets, const int32_t* row,
                       const float* gate, int N, int C) override {
    Run(cuda::LaunchCombineBackward(dbuckets, dgate, dout, buckets, row, gate, N, C, stream_));
  }

  void AdamWUpdate(float* param, float* m, float* v, const float* grad, int64_t n, float lr, float beta1, float beta2,
                   float eps, float weight_decay, float grad_scale, int64_t t) override {
    // Host-side constants exactly as the CPU reference computes them.
    const double bc1 = 1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(t));
    const double bc2 = 1.0 - std::pow(static_cast<double>(beta2), static_cast<double>(t));
    const float step_size = static_cast<float>(lr / bc1);
    const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
    const float decay = 1.0f - lr * weight_decay;
    Run(cuda::LaunchAdamW(param, m, v, grad, n, beta1, beta2, eps, grad_scale, step_size, bc2_sqrt, decay, stream_));
  }

  absl::StatusOr<double> SumSquares(const float* x, int64_t n) override {
    if (absl::Status s = Activate(); !s.ok()) return s;
    const int64_t parts = cuda::SumSquaresPartials(n);
    if (parts == 0) return 0.0;
    if (parts > partials_capacity_) {
      if (partials_ != nullptr) Record(cuda::CudaErrorAt(cudaFree(partials_), __FILE__, __LINE__));
      partials_ = nullptr;
      partials_capacity_ = 0;
      void* p = nullptr;
      if (cudaMalloc(&p, parts * sizeof(double)) != cudaSuccess) {
        cudaGetLastError();
        return absl::ResourceExhaustedError(absl::StrCat("cudaMalloc for ", parts, " partial sums failed"));
      }
      partials_ = static_cast<double*>(p);
      partials_capacity_ = parts;
    }
    Record(cuda::LaunchSumSquaresPartials(partials_, x, n, stream_));
    std::vector<double> host(parts);
    if (absl::Status s = CopyDeviceToHost(host.data(), partials_, parts * sizeof(double)); !s.ok()) return s;
    double total = 0;
    for (double p : host) total += p;
    return total;
  }

 private:
  static constexpr int kVocab = 256;  // rows of dwte (the byte-level vocabulary of the spec)

  absl::Status Activate() {
    if (absl::Status s = FirstError(); !s.ok()) return s;
    Record(cuda::CudaErrorAt(cudaSetDevice(index_), __FILE__, __LINE__));
    return FirstError();
  }
  void Run(const CudaResult& launch) { Record(launch); }
  void Record(const CudaResult& r) {
    if (!r.ok() && first_error_.ok()) first_error_ = r;
  }
  absl::Status FirstError() const {
    if (first_error_.ok()) return absl::OkStatus();
    return absl::InternalError(absl::StrCat("CUDA error on cuda:", index_, " at ", first_error_.file, ":",
                                            first_error_.line, ": ", first_error_.what, " (code ", first_error_.code,
                                            ")"));
  }
  absl::Status Copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, bool wait) {
    if (absl::Status s = Activate(); !s.ok()) return s;
    if (bytes == 0) return absl::OkStatus();
    Record(cuda::CudaErrorAt(cudaMemcpyAsync(dst, src, bytes, kind, stream_), __FILE__, __LINE__));
    if (wait) Record(cuda::CudaErrorAt(cudaStreamSynchronize(stream_), __FILE__, __LINE__));
    return FirstError();
  }
  void Dropout(float* out, const float* inp, int64_t n, float rate, const RngKey& key) {
    if (rate <= 0.0f) {
      if (out != inp && n > 0) {
        Record(cuda::CudaErrorAt(cudaMemcpyAsync(out, inp, n * sizeof(float), cudaMemcpyDeviceToDevice, stream_),
                                 __FILE__, __LINE__));
      }
      return;
    }
    Run(cuda::LaunchDropout(out, inp, n, rate, key, stream_));
  }

  int index_;
  cudaStream_t stream_;
  cublasHandle_t cublas_;
  CudaResult first_error_;
  double* partials_ = nullptr;  // SumSquares partial sums, grown on demand
  int64_t partials_capacity_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> CreateCudaBackend(int device_index, const BackendOptions& /*options*/) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return absl::FailedPreconditionError(
        absl::StrCat("cuda:", device_index, " unavailable: no usable CUDA device (", cudaGetErrorString(e), ")"));
  }
  if (device_index < 0 || device_index >= count) {
    return absl::FailedPreconditionError(
        absl::StrCat("cuda:", device_index, " does not exist: this machine has ", count, " CUDA device(s)"));
  }
  if (cudaError_t s = cudaSetDevice(device_index); s != cudaSuccess) {
    return absl::FailedPreconditionError(absl::StrCat("cudaSetDevice(", device_index, "): ", cudaGetErrorString(s)));
  }
  cudaStream_t stream = nullptr;
  if (cudaError_t s = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking); s != cudaSuccess) {
    return absl::FailedPreconditionError(absl::StrCat("cudaStreamCreate on cuda:", device_index, ": ",
                                                      cudaGetErrorString(s)));
  }
  cublasHandle_t cublas = nullptr;
  if (cublasStatus_t s = cublasCreate(&cublas); s != CUBLAS_STATUS_SUCCESS) {
    cudaStreamDestroy(stream);
    return absl::FailedPreconditionError(absl::StrCat("cublasCreate on cuda:", device_index, ": ",
                                                      cublasGetStatusString(s)));
  }
  // Full f32 products (no TF32) so results stay close to the CPU reference.
  if (cublasSetStream(cublas, stream) != CUBLAS_STATUS_SUCCESS ||
      cublasSetMathMode(cublas, CUBLAS_PEDANTIC_MATH) != CUBLAS_STATUS_SUCCESS) {
    cublasDestroy(cublas);
    cudaStreamDestroy(stream);
    return absl::FailedPreconditionError(absl::StrCat("cuBLAS setup on cuda:", device_index, " failed"));
  }
  return std::unique_ptr<Backend>(new CudaBackend(device_index, stream, cublas));
}

}  // namespace sy::gpu
