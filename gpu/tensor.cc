// Device parsing, shape helpers and the bf16 conversions of tensor.h.
#include "gpu/tensor.h"

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace sy::gpu {

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kF32: return 4;
    case DType::kI32: return 4;
    case DType::kI64: return 8;
    case DType::kBF16: return 2;
  }
  return 0;
}

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "f32";
    case DType::kI32: return "i32";
    case DType::kI64: return "i64";
    case DType::kBF16: return "bf16";
  }
  return "unknown";
}

absl::StatusOr<Device> Device::Parse(absl::string_view text) {
  if (text == "cpu") return Device::Cpu();
  if (text == "cuda") return Device::Cuda(0);
  if (absl::StartsWith(text, "cuda:")) {
    int index = -1;
    if (absl::SimpleAtoi(text.substr(5), &index) && index >= 0 && index < 1024) {
      return Device::Cuda(index);
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("bad device \"", text, "\": expected cpu, cuda or cuda:N"));
}

std::string Device::ToString() const {
  return kind == Kind::kCpu ? std::string("cpu") : absl::StrCat("cuda:", index);
}

int64_t NumElements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeString(const Shape& shape) { return absl::StrCat("(", absl::StrJoin(shape, ", "), ")"); }

uint16_t F32ToBf16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return static_cast<uint16_t>(RoundedBf16Bits(bits) >> 16);
}

float Bf16ToF32(uint16_t x) {
  const uint32_t bits = static_cast<uint32_t>(x) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

void F32ToBf16(uint16_t* dst, const float* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &src[i], sizeof bits);
    dst[i] = static_cast<uint16_t>(RoundedBf16Bits(bits) >> 16);
  }
}

void RoundToBf16(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &x[i], sizeof bits);
    bits = RoundedBf16Bits(bits);
    std::memcpy(&x[i], &bits, sizeof bits);
  }
}

void Bf16ToF32(float* dst, const uint16_t* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = Bf16ToF32(src[i]);
}

}  // namespace sy::gpu
