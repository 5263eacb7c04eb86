// The SYTF tensor file shared by the C++ side and the Python oracle (little endian):
// magic "SYTF", uint32 version = 1, uint32 count; per tensor: uint32 name_len, name
// (utf-8), uint32 dtype (0 f32, 1 i32, 2 i64), uint32 ndim, int64 dims[ndim], raw
// row-major data. Host memory only. Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gpu/tensor.h"

namespace sy::gpu {

struct HostTensor {
  std::string name;
  DType dtype = DType::kF32;  // kF32, kI32 or kI64 in files
  Shape shape;
  std::vector<uint8_t> bytes;  // numel * DTypeSize(dtype)

  static HostTensor F32(std::string name, Shape shape, const std::vector<float>& values);
  static HostTensor I32(std::string name, Shape shape, const std::vector<int32_t>& values);
  std::vector<float> AsF32() const;    // requires dtype kF32
  std::vector<int32_t> AsI32() const;  // requires dtype kI32
  int64_t numel() const { return NumElements(shape); }
};

absl::Status WriteTensorFile(const std::string& path, const std::vector<HostTensor>& tensors);
// kNotFound when the file is missing; kInvalidArgument (with the offset) when it is
// malformed: bad magic/version/dtype, truncated, sizes that do not add up.
absl::StatusOr<std::vector<HostTensor>> ReadTensorFile(const std::string& path);
// Same, from bytes in memory.
absl::StatusOr<std::vector<HostTensor>> ParseTensorFile(absl::string_view data);
// Looks a tensor up by name (nullptr when absent).
const HostTensor* FindTensor(const std::vector<HostTensor>& tensors, absl::string_view name);

}  // namespace sy::gpu
