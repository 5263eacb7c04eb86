// f32/bf16 wire frames (see wire_tensor.h).
#include "services/cluster/wire_tensor.h"

#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gpu/tensor.h"

namespace sy::cluster {

absl::StatusOr<proto::DType> ParseWireDType(const std::string& name) {
  if (name == "f32") return proto::DType::F32;
  if (name == "bf16") return proto::DType::BF16;
  return absl::InvalidArgumentError(absl::StrCat("wire dtype '", name, "': expected f32 or bf16"));
}

transport::Frame EncodeFloats(const float* src, int64_t n, proto::DType dtype) {
  if (dtype == proto::DType::BF16) {
    std::vector<uint8_t> bytes(static_cast<size_t>(n) * 2);
    gpu::F32ToBf16(reinterpret_cast<uint16_t*>(bytes.data()), src, n);
    return transport::Frame::FromVector(std::move(bytes));
  }
  return transport::Frame::CopyOf(src, static_cast<size_t>(n) * sizeof(float));
}

absl::Status DecodeFloats(const transport::Frame& frame, proto::DType dtype, int64_t n, float* out) {
  const size_t width = dtype == proto::DType::BF16 ? 2 : 4;
  if (dtype != proto::DType::BF16 && dtype != proto::DType::F32) {
    return absl::InvalidArgumentError("tensor frame: dtype must be f32 or bf16");
  }
  if (frame.size() != static_cast<size_t>(n) * width) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor frame: ", frame.size(), " bytes, expected ", n, " elements of ", width, " bytes"));
  }
  if (dtype == proto::DType::F32) {
    if (n > 0) std::memcpy(out, frame.data(), frame.size());
    return absl::OkStatus();
  }
  std::vector<uint16_t> half(static_cast<size_t>(n));
  if (n > 0) std::memcpy(half.data(), frame.data(), frame.size());
  gpu::Bf16ToF32(out, half.data(), n);
  return absl::OkStatus();
}

void RoundToBf16InPlace(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = gpu::RoundToBf16(x[i]);
}

}  // namespace sy::cluster
