// Device emulation (--emulate_device_gflops): the FLOPs counted for a bucket, and a
// host whose buckets' replies leave no earlier than FLOPs / G after the device was free
// (a lower bound only: the replies may come later on a busy machine).
#include "services/expert_host/emulated_device.h"

#include <gtest/gtest.h>

#include <memory>

#include "absl/time/clock.h"
#include "tests/unit/expert_host/host_fixture.h"

namespace sy::expert_host::testing {
namespace {

TEST(ExpertBucketFlopsTest, CountsBothGemmsAndTwiceForBackward) {
  // (3 x 8) by (8 x 16) and (3 x 16) by (16 x 8): 2 * 3*8*16 multiply-adds, 2 FLOPs each.
  EXPECT_EQ(ExpertBucketFlops(3, 8, 16, /*backward=*/false), 1536);
  EXPECT_EQ(ExpertBucketFlops(3, 8, 16, /*backward=*/true), 3072);
  EXPECT_EQ(ExpertBucketFlops(0, 8, 16, false), 0);
  EXPECT_EQ(ExpertBucketFlops(4096, 1024, 4096, true), int64_t{8} * 4096 * 1024 * 4096);  // no int overflow
}

// A device so slow that a SmallHostModel bucket of 3 rows (1536 FLOPs) takes 0.25 s forward.
constexpr double kGflops = 1536 / 0.25 / 1e9;
constexpr absl::Duration kForwardTime = absl::Milliseconds(250);

class EmulatedDeviceTest : public HostServiceTest {
 protected:
  void SetUp() override { Start(absl::Seconds(30), 0, SmallHostModel(), {}, kGflops); }
};

TEST_F(EmulatedDeviceTest, BucketRepliesTakeAtLeastTheirFlopsOverG) {
  BucketSpec b;
  absl::Time start = absl::Now();
  ASSERT_TRUE(Forward(b).ok());
  EXPECT_GE(absl::Now() - start, kForwardTime);
  start = absl::Now();
  ASSERT_TRUE(Backward(b).ok());
  EXPECT_GE(absl::Now() - start, 2 * kForwardTime);
}

TEST_F(EmulatedDeviceTest, OneDeviceRunsTheHostsBucketsOneAfterAnother) {
  // Two experts' buckets sent together share host-0's one device: the later reply
  // comes no earlier than both buckets' time.
  BucketSpec first, second;
  second.expert = 2;  // host-0 holds experts 0 and 2 of each layer (static placement over 2 hosts)
  const absl::Time start = absl::Now();
  std::shared_ptr<Pending> a = ForwardAsync(first);
  std::shared_ptr<Pending> b = ForwardAsync(second);
  ASSERT_TRUE(a->Wait().ok());
  ASSERT_TRUE(b->Wait().ok());
  EXPECT_GE(absl::Now() - start, 2 * kForwardTime);
}

}  // namespace
}  // namespace sy::expert_host::testing
