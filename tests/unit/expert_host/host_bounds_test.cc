// The expert host's resource bounds, one at a time: a request naming a step beyond
// the window is refused (OutOfRange), not parked; an actor parks a bounded number of
// requests, each for a bounded time; the requests waiting for actors hold a bounded
// budget; a restore chunk claiming a state larger than the actor's is refused. Each
// refusal is counted in sy_refused_total{reason} and changes nothing.
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include <capnp/message.h>

#include "common/base/fnv1a.h"
#include "services/cluster/envelope.h"
#include "tests/unit/expert_host/host_fixture.h"

namespace sy::expert_host::testing {
namespace {

// A request waiting for version 1 while the host stays at version 0.
BucketSpec ForVersionOne() {
  BucketSpec b;
  b.training = false;
  b.step = 0;
  b.version = 1;
  return b;
}

class HostBoundsTest : public HostServiceTest {
 protected:
  double Refused(const char* reason) {
    return registry_.GetCounter("sy_refused_total", "", {{"reason", reason}}).value();
  }
  // Polls (bounded) until the host holds `n` requests; returns what it holds then.
  size_t AwaitHeld(size_t n) {
    for (int i = 0; i < 200 && service_->requests_held() != n; ++i) absl::SleepFor(absl::Milliseconds(25));
    return service_->requests_held();
  }
};

TEST_F(HostBoundsTest, AStepBeyondTheWindowIsRefusedNotParked) {
  const std::vector<uint64_t> before = Checksums();
  const uint64_t beyond = config_.limits.step_window + 1;  // the host applied step 0
  BucketSpec training;
  training.step = beyond;
  training.version = beyond - 1;
  const absl::Status refused = Forward(training).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kOutOfRange) << refused;
  BucketSpec evaluation = ForVersionOne();
  evaluation.version = beyond;  // waits like a request of step beyond + 1
  EXPECT_EQ(Forward(evaluation).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(Refused("step_window"), 2);
  EXPECT_EQ(service_->requests_held(), 0u);
  EXPECT_EQ(Checksums(), before);
  // The last step inside the window still waits (parked) for its version.
  BucketSpec inside = training;
  inside.step = config_.limits.step_window;
  inside.version = inside.step - 1;
  auto parked = ForwardAsync(inside);
  EXPECT_EQ(AwaitHeld(1), 1u);
  EXPECT_FALSE(parked->Done());
}

TEST_F(HostBoundsTest, AnActorParksAtMostItsLimitAndServesThemAfterTheApply) {
  HostLimits limits;
  limits.parking.max_parked = 2;
  Start(absl::Seconds(30), 0, SmallHostModel(), limits);
  auto first = ForwardAsync(ForVersionOne());
  auto second = ForwardAsync(ForVersionOne());
  const absl::Status third = ForwardAsync(ForVersionOne())->Wait();
  EXPECT_EQ(third.code(), absl::StatusCode::kResourceExhausted) << third;
  EXPECT_EQ(Refused("parked_per_actor"), 1);
  EXPECT_FALSE(first->Done());
  CompleteStep(1);
  EXPECT_TRUE(first->Wait().ok());
  EXPECT_TRUE(second->Wait().ok());
  EXPECT_EQ(AwaitHeld(0), 0u);
}

TEST_F(HostBoundsTest, TheHostHoldsAtMostItsRequestBudget) {
  HostLimits limits;
  limits.requests.max_requests = 2;
  Start(absl::Seconds(30), 0, SmallHostModel(), limits);
  auto first = ForwardAsync(ForVersionOne());
  auto second = ForwardAsync(ForVersionOne());
  const absl::Status third = ForwardAsync(ForVersionOne())->Wait();
  EXPECT_EQ(third.code(), absl::StatusCode::kResourceExhausted) << third;
  EXPECT_EQ(Refused("requests_held"), 1);
  EXPECT_EQ(service_->requests_held(), 2u);
  CompleteStep(1);
  EXPECT_TRUE(first->Wait().ok());
  EXPECT_TRUE(second->Wait().ok());
  // Answered requests give their share back: the host serves again.
  EXPECT_EQ(AwaitHeld(0), 0u);
  EXPECT_EQ(service_->bytes_held(), 0u);
  BucketSpec now = ForVersionOne();
  EXPECT_TRUE(Forward(now).ok());
}

TEST_F(HostBoundsTest, AParkedRequestWaitsAtMostTheParkingLimitWhateverItsDeadline) {
  HostLimits limits;
  limits.parking.max_wait = absl::Milliseconds(200);
  Start(absl::Seconds(30), 0, SmallHostModel(), limits);
  auto parked = ForwardAsync(ForVersionOne());  // its deadline is 20 s away
  const absl::Status expired = parked->Wait();
  EXPECT_EQ(expired.code(), absl::StatusCode::kDeadlineExceeded) << expired;
  EXPECT_NE(expired.message().find("newer version"), std::string::npos) << "the host must answer it: " << expired;
  EXPECT_EQ(AwaitHeld(0), 0u);
}

TEST_F(HostBoundsTest, ARestoreChunkClaimingMoreThanTheActorsStateIsRefused) {
  const std::vector<uint64_t> before = Checksums();
  const cluster::ActorKey key = cluster::ActorKey::Expert(0, 0);
  const std::string chunk(4096, 'x');
  capnp::MallocMessageBuilder header;
  auto req = cluster::InitBody<proto::expert::StateStreamRequest>(header, proto::MessageKind::STATE_STREAM);
  key.ToProto(req.initActor());
  req.setCheckpointId(1);
  auto in = req.initChunkIn();
  in.setIndex(0);
  in.setCount(1u << 20);
  in.setTotalBytes(uint64_t{1} << 40);
  in.setChecksum(ChecksumOf(chunk));
  const absl::Status refused = CallAsync(header, cluster::AttachState(header, chunk))->Wait();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << refused;
  EXPECT_EQ(Refused("restore_chunk"), 1);
  EXPECT_EQ(Checksums(), before);
}

}  // namespace
}  // namespace sy::expert_host::testing
