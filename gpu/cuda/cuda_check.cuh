// Error results of CUDA and cuBLAS calls, carrying the file and line that
// failed. Kernel launchers return a CudaResult instead of aborting; the backend
// keeps the first failure and reports it as an absl::Status from its next
// status-returning call. Compiles with nvcc and with the host C++ compiler.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

namespace sy::gpu::cuda {

struct CudaResult {
  int code = 0;                // cudaError_t or cublasStatus_t value; 0 = success
  const char* what = nullptr;  // static description of the error
  const char* file = nullptr;
  int line = 0;
  bool ok() const { return code == 0; }
};

inline CudaResult CudaErrorAt(cudaError_t e, const char* file, int line) {
  if (e == cudaSuccess) return {};
  return CudaResult{static_cast<int>(e), cudaGetErrorString(e), file, line};
}

inline CudaResult CublasErrorAt(cublasStatus_t s, const char* file, int line) {
  if (s == CUBLAS_STATUS_SUCCESS) return {};
  return CudaResult{static_cast<int>(s), cublasGetStatusString(s), file, line};
}

}  // namespace sy::gpu::cuda

// Returns the failure of a CUDA runtime call from the enclosing function.
#define SY_CUDA_TRY(expr)                                                                    \
  do {                                                                                       \
    const ::sy::gpu::cuda::CudaResult sy_r_ = ::sy::gpu::cuda::CudaErrorAt((expr), __FILE__, __LINE__); \
    if (!sy_r_.ok()) return sy_r_;                                                           \
  } while (0)

// The result of the kernel launch just made (launch-configuration errors).
#define SY_CUDA_LAUNCH_RESULT() ::sy::gpu::cuda::CudaErrorAt(cudaGetLastError(), __FILE__, __LINE__)

// The result of a cuBLAS call, with file and line.
#define SY_CUBLAS_RESULT(expr) ::sy::gpu::cuda::CublasErrorAt((expr), __FILE__, __LINE__)
