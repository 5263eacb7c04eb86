// The bucket wire codec and bucket rows: f32 frames are exact, bf16 frames hold the
// round-to-nearest-even values whatever the frame's alignment, malformed frames are
// refused, the device forms equal the host forms, and on the CPU backend received
// floats are adopted and an f32 frame refers to the rows instead of copying them.
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "gpu/cpu/cpu_backend.h"
#include "gpu/model/bucket_codec.h"
#include "gpu/model/bucket_rows.h"
#include "gpu/tensor.h"
#include "gtest/gtest.h"

namespace sy::gpu {
namespace {

std::vector<float> Values() {
  return {0.0f, -0.0f, 1.0f, -2.5f, 3.14159265f, 1e-30f, -6.5e20f, 1.00390625f, 1.0f + 1.0f / 256.0f,
          std::numeric_limits<float>::infinity(), 65504.123f};
}

std::vector<float> Rounded(const std::vector<float>& x) {
  std::vector<float> r;
  for (float v : x) r.push_back(RoundToBf16(v));
  return r;
}

// The bit patterns, so that -0.0 and 0.0 differ.
std::vector<uint32_t> Bits(const std::vector<float>& x) {
  std::vector<uint32_t> bits(x.size());
  if (!x.empty()) std::memcpy(bits.data(), x.data(), x.size() * sizeof(float));
  return bits;
}

TEST(BucketCodecTest, ParsesTheWireDTypes) {
  EXPECT_EQ(ParseWireDType("f32").value(), proto::DType::F32);
  EXPECT_EQ(ParseWireDType("bf16").value(), proto::DType::BF16);
  EXPECT_EQ(ParseWireDType("f16").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(BucketCodecTest, F32IsExactAndBf16RoundsToNearestEven) {
  const std::vector<float> x = Values();
  const int64_t n = static_cast<int64_t>(x.size());
  transport::Frame f32 = EncodeFloats(x.data(), n, proto::DType::F32);
  transport::Frame bf16 = EncodeFloats(x.data(), n, proto::DType::BF16);
  EXPECT_EQ(f32.size(), x.size() * 4);
  EXPECT_EQ(bf16.size(), x.size() * 2);
  std::vector<float> got(x.size());
  ASSERT_TRUE(DecodeFloats(f32, proto::DType::F32, n, got.data()).ok());
  EXPECT_EQ(Bits(got), Bits(x));
  ASSERT_TRUE(DecodeFloats(bf16, proto::DType::BF16, n, got.data()).ok());
  EXPECT_EQ(Bits(got), Bits(Rounded(x)));
}

TEST(BucketCodecTest, Bf16DecodesFromAnUnalignedFrame) {
  const std::vector<float> x = Values();
  const int64_t n = static_cast<int64_t>(x.size());
  transport::Frame aligned = EncodeFloats(x.data(), n, proto::DType::BF16);
  auto bytes = std::make_shared<std::vector<uint8_t>>(aligned.size() + 1);
  std::memcpy(bytes->data() + 1, aligned.data(), aligned.size());
  const transport::Frame odd = transport::Frame::FromShared(bytes, bytes->data() + 1, aligned.size());
  std::vector<float> got(x.size());
  ASSERT_TRUE(DecodeFloats(odd, proto::DType::BF16, n, got.data()).ok());
  EXPECT_EQ(Bits(got), Bits(Rounded(x)));
}

TEST(BucketCodecTest, MalformedFramesAreRefusedAndWriteNothing) {
  const std::vector<float> x = {1.0f, 2.0f, 3.0f};
  std::vector<float> out(4, 7.0f);
  const transport::Frame frame = EncodeFloats(x.data(), 3, proto::DType::F32);
  EXPECT_EQ(DecodeFloats(frame, proto::DType::F32, 4, out.data()).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeFloats(frame, proto::DType::BF16, 3, out.data()).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeFloats(frame, static_cast<proto::DType>(7), 12, out.data()).code(),
            absl::StatusCode::kInvalidArgument);
  auto backend = CreateCpuBackend(BackendOptions{1});
  EXPECT_EQ(DecodeDeviceFloats(backend.get(), frame, proto::DType::F32, 2, out.data()).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(out, std::vector<float>(4, 7.0f));
}

TEST(BucketCodecTest, DeviceFormsEqualTheHostForms) {
  auto backend = CreateCpuBackend(BackendOptions{1});
  const std::vector<float> x = Values();
  const int64_t n = static_cast<int64_t>(x.size());
  float* device = static_cast<float*>(backend->Alloc(x.size() * sizeof(float)).value());
  ASSERT_TRUE(backend->CopyHostToDevice(device, x.data(), x.size() * sizeof(float)).ok());
  for (proto::DType dtype : {proto::DType::F32, proto::DType::BF16}) {
    const transport::Frame host = EncodeFloats(x.data(), n, dtype);
    const transport::Frame from_device = EncodeDeviceFloats(backend.get(), device, n, dtype).value();
    ASSERT_EQ(host.size(), from_device.size());
    EXPECT_EQ(std::memcmp(host.data(), from_device.data(), host.size()), 0);
    std::vector<float> want(x.size()), got(x.size());
    ASSERT_TRUE(DecodeFloats(host, dtype, n, want.data()).ok());
    ASSERT_TRUE(DecodeDeviceFloats(backend.get(), host, dtype, n, device).ok());
    ASSERT_TRUE(backend->CopyDeviceToHost(got.data(), device, got.size() * sizeof(float)).ok());
    EXPECT_EQ(Bits(got), Bits(want));
    ASSERT_TRUE(backend->CopyHostToDevice(device, x.data(), x.size() * sizeof(float)).ok());
  }
  backend->RoundToBf16(device, n);
  std::vector<float> rounded(x.size());
  ASSERT_TRUE(backend->CopyDeviceToHost(rounded.data(), device, rounded.size() * sizeof(float)).ok());
  EXPECT_EQ(Bits(rounded), Bits(Rounded(x)));
  backend->Free(device);
}

TEST(BucketRowsTest, OnTheCpuReceivedFloatsAreAdoptedAndF32FramesShareTheRows) {
  auto backend = CreateCpuBackend(BackendOptions{1});
  ASSERT_TRUE(DeviceMemoryIsHostMemory(*backend));
  std::vector<float> received = Values();
  const std::vector<float> x = received;
  const float* where = received.data();
  transport::Frame f32, bf16;
  {
    BucketRows rows = BucketRows::FromHost(backend.get(), std::move(received)).value();
    EXPECT_EQ(rows.data(), where);
    EXPECT_EQ(rows.size(), static_cast<int64_t>(x.size()));
    f32 = rows.ToFrame(proto::DType::F32).value();
    bf16 = rows.ToFrame(proto::DType::BF16).value();
    EXPECT_EQ(static_cast<const void*>(f32.data()), static_cast<const void*>(rows.data()));
  }
  // The frames outlive the rows.
  std::vector<float> got(x.size());
  ASSERT_TRUE(DecodeFloats(f32, proto::DType::F32, static_cast<int64_t>(x.size()), got.data()).ok());
  EXPECT_EQ(Bits(got), Bits(x));
  ASSERT_TRUE(DecodeFloats(bf16, proto::DType::BF16, static_cast<int64_t>(x.size()), got.data()).ok());
  EXPECT_EQ(Bits(got), Bits(Rounded(x)));
}

TEST(BucketRowsTest, AllocatedRowsAreAlignedAndBecomeFrames) {
  auto backend = CreateCpuBackend(BackendOptions{1});
  BucketRows rows = BucketRows::Allocate(backend.get(), 5).value();
  EXPECT_EQ(reinterpret_cast<uintptr_t>(rows.data()) % 64, 0u);
  for (int i = 0; i < 5; ++i) rows.data()[i] = 0.5f * static_cast<float>(i);
  const transport::Frame frame = rows.ToFrame(proto::DType::F32).value();
  std::vector<float> got(5);
  ASSERT_TRUE(DecodeFloats(frame, proto::DType::F32, 5, got.data()).ok());
  EXPECT_EQ(got, (std::vector<float>{0.0f, 0.5f, 1.0f, 1.5f, 2.0f}));
  BucketRows empty = BucketRows::Allocate(backend.get(), 0).value();
  EXPECT_EQ(empty.ToFrame(proto::DType::BF16).value().size(), 0u);
}

}  // namespace
}  // namespace sy::gpu
