// f32/bf16 wire frames (see bucket_codec.h). Frames own typed buffers (float or
// uint16_t, never zero-filled: the encoder writes every element) shared with the transport.
#include "gpu/model/bucket_codec.h"

#include <cstring>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gpu/tensor.h"

namespace sy::gpu {
namespace {

// A frame owning n uninitialised elements of T; *data points at them.
template <class T>
transport::Frame NewFrame(int64_t n, T** data) {
  std::shared_ptr<T> owner(new T[static_cast<size_t>(n)], std::default_delete<T[]>());
  *data = owner.get();
  return transport::Frame::FromShared(std::move(owner), *data, static_cast<size_t>(n) * sizeof(T));
}

absl::Status CheckFrame(const transport::Frame& frame, proto::DType dtype, int64_t n) {
  if (dtype != proto::DType::BF16 && dtype != proto::DType::F32) {
    return absl::InvalidArgumentError("tensor frame: dtype must be f32 or bf16");
  }
  const size_t width = dtype == proto::DType::BF16 ? 2 : 4;
  if (frame.size() != static_cast<size_t>(n) * width) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor frame: ", frame.size(), " bytes, expected ", n, " elements of ", width, " bytes"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<proto::DType> ParseWireDType(const std::string& name) {
  if (name == "f32") return proto::DType::F32;
  if (name == "bf16") return proto::DType::BF16;
  return absl::InvalidArgumentError(absl::StrCat("wire dtype '", name, "': expected f32 or bf16"));
}

bool DeviceMemoryIsHostMemory(const Backend& backend) { return backend.device().kind == Device::Kind::kCpu; }

transport::Frame EncodeFloats(const float* src, int64_t n, proto::DType dtype) {
  if (dtype == proto::DType::BF16) {
    uint16_t* half = nullptr;
    transport::Frame frame = NewFrame(n, &half);
    F32ToBf16(half, src, n);
    return frame;
  }
  float* full = nullptr;
  transport::Frame frame = NewFrame(n, &full);
  if (n > 0) std::memcpy(full, src, static_cast<size_t>(n) * sizeof(float));
  return frame;
}

absl::StatusOr<transport::Frame> EncodeDeviceFloats(Backend* backend, const float* src, int64_t n,
                                                    proto::DType dtype) {
  if (DeviceMemoryIsHostMemory(*backend)) return EncodeFloats(src, n, dtype);
  if (dtype == proto::DType::BF16) {
    std::vector<float> staged(static_cast<size_t>(n));
    if (absl::Status s = backend->CopyDeviceToHost(staged.data(), src, staged.size() * sizeof(float)); !s.ok()) {
      return s;
    }
    return EncodeFloats(staged.data(), n, dtype);
  }
  float* full = nullptr;
  transport::Frame frame = NewFrame(n, &full);
  if (absl::Status s = backend->CopyDeviceToHost(full, src, static_cast<size_t>(n) * sizeof(float)); !s.ok()) {
    return s;
  }
  return frame;
}

absl::Status DecodeFloats(const transport::Frame& frame, proto::DType dtype, int64_t n, float* out) {
  if (absl::Status s = CheckFrame(frame, dtype, n); !s.ok()) return s;
  if (dtype == proto::DType::F32) {
    if (n > 0) std::memcpy(out, frame.data(), frame.size());
    return absl::OkStatus();
  }
  // Element by element: a received frame's bytes need not be aligned for uint16_t.
  for (int64_t i = 0; i < n; ++i) {
    uint16_t half;
    std::memcpy(&half, frame.data() + 2 * i, sizeof half);
    out[i] = Bf16ToF32(half);
  }
  return absl::OkStatus();
}

absl::Status DecodeDeviceFloats(Backend* backend, const transport::Frame& frame, proto::DType dtype, int64_t n,
                                float* out) {
  if (DeviceMemoryIsHostMemory(*backend)) return DecodeFloats(frame, dtype, n, out);
  if (absl::Status s = CheckFrame(frame, dtype, n); !s.ok()) return s;
  if (dtype == proto::DType::F32) return backend->CopyHostToDevice(out, frame.data(), frame.size());
  std::vector<float> staged(static_cast<size_t>(n));
  if (absl::Status s = DecodeFloats(frame, dtype, n, staged.data()); !s.ok()) return s;
  return backend->CopyHostToDevice(out, staged.data(), staged.size() * sizeof(float));
}

}  // namespace sy::gpu
