// The Switchyard tensor file (SYTF): named f32/i32/i64 tensors in one small binary
// file, the way the C++ tests hand weights and batches to the PyTorch oracle
// (tensor_file.py reads and writes the same format) and read its results back.
// Layout, little endian: "SYTF", uint32 version=1, uint32 count; per tensor:
// uint32 name_len, name (utf-8), uint32 dtype (0=f32, 1=i32, 2=i64), uint32 ndim,
// int64 dims[ndim], raw row-major data.
// A TensorFile is a plain value: not thread-safe for concurrent mutation.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace sy::reference {

enum class TensorDType : uint32_t { kF32 = 0, kI32 = 1, kI64 = 2 };

// One tensor as stored: its element type, shape and raw little-endian bytes.
struct StoredTensor {
  TensorDType dtype = TensorDType::kF32;
  std::vector<int64_t> dims;  // empty for a scalar
  std::string bytes;

  int64_t NumElements() const;
};

class TensorFile {
 public:
  // Adding a name that is already present, or values whose count does not match
  // dims, fails with kInvalidArgument and leaves the file unchanged.
  absl::Status AddF32(const std::string& name, std::vector<int64_t> dims, absl::Span<const float> values);
  absl::Status AddI32(const std::string& name, std::vector<int64_t> dims, absl::Span<const int32_t> values);
  absl::Status AddI64(const std::string& name, std::vector<int64_t> dims, absl::Span<const int64_t> values);

  bool Has(const std::string& name) const { return tensors_.count(name) != 0; }
  // kNotFound when absent, kInvalidArgument when stored with another dtype.
  absl::StatusOr<const StoredTensor*> Find(const std::string& name, TensorDType dtype) const;
  absl::StatusOr<std::vector<float>> F32(const std::string& name) const;
  absl::StatusOr<std::vector<int32_t>> I32(const std::string& name) const;
  absl::StatusOr<std::vector<int64_t>> I64(const std::string& name) const;
  // A scalar read as f32, or as i64 (accepts any shape with exactly one element).
  absl::StatusOr<float> ScalarF32(const std::string& name) const;
  absl::StatusOr<int64_t> ScalarI64(const std::string& name) const;

  // Names in the order they were added or read.
  const std::vector<std::string>& names() const { return order_; }

  std::string Serialize() const;
  // Rejects anything malformed (bad magic or version, truncation, unknown dtype,
  // negative or oversized dims, duplicate names, trailing bytes) with kInvalidArgument.
  static absl::StatusOr<TensorFile> Parse(absl::string_view bytes);

  absl::Status Save(const std::string& path) const;
  // kNotFound when the file cannot be opened, else as Parse.
  static absl::StatusOr<TensorFile> Load(const std::string& path);

 private:
  absl::Status Add(const std::string& name, TensorDType dtype, std::vector<int64_t> dims, const void* data,
                   int64_t count, size_t element_size);

  std::map<std::string, StoredTensor> tensors_;
  std::vector<std::string> order_;
};

}  // namespace sy::reference
