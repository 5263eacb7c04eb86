// Tensors as views: a pointer into device (or host) memory plus dtype, shape and
// device. Views never own memory; one-block allocations (ParamBlock, the model's
// activation arena) own it and hand out views. Also the bf16 helpers used for the
// wire (bf16 storage, f32 compute). Thread-safety: plain values, no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gpu/bf16_bits.h"

namespace sy::gpu {

// Element types. The numeric codes of kF32/kI32/kI64 are those of the SYTF file format.
enum class DType : uint32_t { kF32 = 0, kI32 = 1, kI64 = 2, kBF16 = 3 };

// Bytes per element of `dtype`.
size_t DTypeSize(DType dtype);
const char* DTypeName(DType dtype);

// Where memory lives and compute runs: "cpu" or "cuda:N" ("cuda" means cuda:0).
struct Device {
  enum class Kind { kCpu, kCuda };
  Kind kind = Kind::kCpu;
  int index = 0;

  static Device Cpu() { return Device{}; }
  static Device Cuda(int index) { return Device{Kind::kCuda, index}; }
  // Parses "cpu", "cuda", "cuda:N"; anything else is kInvalidArgument.
  static absl::StatusOr<Device> Parse(absl::string_view text);
  std::string ToString() const;
  bool operator==(const Device& o) const { return kind == o.kind && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
};

using Shape = std::vector<int64_t>;

// Product of the dims (1 for a scalar shape {}).
int64_t NumElements(const Shape& shape);
std::string ShapeString(const Shape& shape);

// A non-owning view: `data` points into memory on `device`, contiguous row-major.
struct TensorView {
  void* data = nullptr;
  DType dtype = DType::kF32;
  Shape shape;
  Device device;

  int64_t numel() const { return NumElements(shape); }
  size_t bytes() const { return static_cast<size_t>(numel()) * DTypeSize(dtype); }
  float* f32() const { return static_cast<float*>(data); }
  int32_t* i32() const { return static_cast<int32_t*>(data); }
  uint16_t* bf16() const { return static_cast<uint16_t*>(data); }
};

// bf16 conversions (rounding: RoundedBf16Bits, gpu/bf16_bits.h).
uint16_t F32ToBf16(float x);
float Bf16ToF32(uint16_t x);
// x rounded to the nearest bf16 value, returned as f32.
inline float RoundToBf16(float x) { return Bf16ToF32(F32ToBf16(x)); }
// Array forms (host memory): dst (n), src (n).
void F32ToBf16(uint16_t* dst, const float* src, int64_t n);
void Bf16ToF32(float* dst, const uint16_t* src, int64_t n);
// x (n) rounded to the nearest bf16 values in place, as f32.
void RoundToBf16(float* x, int64_t n);

}  // namespace sy::gpu
