// Picks the backend for a device: the CPU reference always, CUDA when it was built.
#include "absl/strings/str_cat.h"
#include "gpu/backend.h"
#include "gpu/cpu/cpu_backend.h"

namespace sy::gpu {

absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(const Device& device,
                                                       const BackendOptions& options) {
  if (device.kind == Device::Kind::kCpu) return CreateCpuBackend(options);
#ifdef SY_WITH_CUDA_BACKEND
  return CreateCudaBackend(device.index, options);
#else
  return absl::UnimplementedError(
      absl::StrCat("device ", device.ToString(), ": this build has no CUDA backend"));
#endif
}

}  // namespace sy::gpu
