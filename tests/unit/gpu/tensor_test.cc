// Device parsing, shapes and the bf16 round-to-nearest-even helpers.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "gpu/cpu/cpu_backend.h"
#include "gpu/tensor.h"
#include "gtest/gtest.h"

namespace sy::gpu {
namespace {

float FromBits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

TEST(DeviceTest, ParsesCpuAndCuda) {
  EXPECT_EQ(Device::Parse("cpu").value(), Device::Cpu());
  EXPECT_EQ(Device::Parse("cuda").value(), Device::Cuda(0));
  EXPECT_EQ(Device::Parse("cuda:3").value(), Device::Cuda(3));
  EXPECT_EQ(Device::Cuda(2).ToString(), "cuda:2");
  for (const char* bad : {"", "gpu", "cuda:", "cuda:-1", "cuda:x", "CPU"}) {
    EXPECT_EQ(Device::Parse(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(TensorTest, ShapesAndViews) {
  EXPECT_EQ(NumElements({2, 3, 4}), 24);
  EXPECT_EQ(NumElements({}), 1);
  EXPECT_EQ(ShapeString({2, 3}), "(2, 3)");
  float data[6] = {};
  TensorView v{data, DType::kF32, {2, 3}, Device::Cpu()};
  EXPECT_EQ(v.bytes(), 24u);
  EXPECT_EQ(DTypeSize(DType::kBF16), 2u);
}

TEST(Bf16Test, RoundsToNearestEven) {
  EXPECT_EQ(F32ToBf16(1.0f), 0x3F80);
  EXPECT_EQ(Bf16ToF32(0x3F80), 1.0f);
  // 1 + 2^-8 is exactly halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1.0).
  EXPECT_EQ(RoundToBf16(1.0f + std::ldexp(1.0f, -8)), 1.0f);
  // 1 + 3*2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even): rounds up.
  EXPECT_EQ(RoundToBf16(1.0f + 3 * std::ldexp(1.0f, -8)), 1.0f + std::ldexp(1.0f, -6));
  // Just above the halfway point rounds up.
  EXPECT_EQ(RoundToBf16(FromBits(0x3F808001u)), FromBits(0x3F810000u));
  EXPECT_EQ(RoundToBf16(-2.5f), -2.5f);
  EXPECT_TRUE(std::isnan(RoundToBf16(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(std::isnan(Bf16ToF32(F32ToBf16(FromBits(0x7F800001u)))));  // signalling NaN stays NaN
  EXPECT_EQ(RoundToBf16(std::numeric_limits<float>::infinity()), std::numeric_limits<float>::infinity());
  const float src[3] = {0.1f, -3.0f, 1e30f};
  uint16_t mid[3];
  float back[3];
  F32ToBf16(mid, src, 3);
  Bf16ToF32(back, mid, 3);
  for (int i = 0; i < 3; ++i) EXPECT_LE(std::fabs(back[i] - src[i]), std::fabs(src[i]) * (1.0f / 256));
}

// The branch-free conversions, and the CPU backend's rounding op, against the plain
// definition (round to nearest even, NaN quieted) on random bit patterns and on every
// special kind of value.
TEST(Bf16Test, ArrayFormsGiveTheDefinitionsBitsForEveryKindOfValue) {
  auto reference = [](uint32_t bits) -> uint32_t {
    if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu) != 0) return (bits | 0x00400000u) & 0xffff0000u;
    return (bits + 0x7fffu + ((bits >> 16) & 1u)) & 0xffff0000u;
  };
  std::vector<uint32_t> patterns = {0u,          0x80000000u, 0x7f800000u, 0xff800000u, 0x7f800001u, 0xff800001u,
                                    0x7fc00000u, 0x7fffffffu, 0xffffffffu, 0x7f7fffffu, 0x7f7f8000u, 0x7f7f7fffu,
                                    0x00000001u, 0x00008000u, 0x00018000u, 0x3f808000u, 0x3f818000u, 0xbf808001u};
  std::mt19937 gen(11);
  for (int i = 0; i < 100000; ++i) patterns.push_back(static_cast<uint32_t>(gen()));
  const size_t n = patterns.size();
  std::vector<float> values(n), rounded(n);
  std::memcpy(values.data(), patterns.data(), n * sizeof(float));
  rounded = values;
  std::vector<uint16_t> halves(n);
  F32ToBf16(halves.data(), values.data(), static_cast<int64_t>(n));
  RoundToBf16(rounded.data(), static_cast<int64_t>(n));
  std::vector<float> on_backend = values;  // the backend op, cut between two threads
  CreateCpuBackend(BackendOptions{2})->RoundToBf16(on_backend.data(), static_cast<int64_t>(n));
  EXPECT_EQ(std::memcmp(on_backend.data(), rounded.data(), n * sizeof(float)), 0);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t expect = reference(patterns[i]);
    ASSERT_EQ(static_cast<uint32_t>(halves[i]) << 16, expect) << std::hex << patterns[i];
    ASSERT_EQ(static_cast<uint32_t>(F32ToBf16(values[i])) << 16, expect) << std::hex << patterns[i];
    uint32_t got;
    std::memcpy(&got, &rounded[i], sizeof got);
    ASSERT_EQ(got, expect) << std::hex << patterns[i];
  }
}

}  // namespace
}  // namespace sy::gpu
