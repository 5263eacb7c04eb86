// Device parsing, shapes and the bf16 round-to-nearest-even helpers.
#include <cmath>
#include <cstring>
#include <limits>

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

}  // namespace
}  // namespace sy::gpu
