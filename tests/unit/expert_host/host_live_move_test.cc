// Live moves between expert hosts: the host an actor leaves serves it up to the move's
// last step S (the previous epoch's requests too), then streams its state straight to
// the new host and refuses later steps with the new epoch; the new host parks requests
// for the actor until the state is installed, which touches no other actor and rolls
// nothing back. The LIVE_STATE door: a chunk from the wrong sender, for an actor no
// move brings, of the wrong size or version, with a bad checksum or non-finite values
// is refused and changes nothing.
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "common/base/fnv1a.h"
#include "proto/expert.capnp.h"
#include "services/cluster/envelope.h"
#include "services/cluster/placement_table.h"
#include "tests/unit/expert_host/host_fixture.h"

namespace sy::expert_host {
namespace {

using testing::BucketSpec;
using testing::HostServiceTest;
using testing::Pending;

// What a LIVE_STATE chunk says about the state it carries (the defaults: all true).
struct LiveChunk {
  std::string sender = "host-1";
  uint64_t version = 1;
  int64_t total_bytes_delta = 0;  // added to the real size
  uint64_t checksum_delta = 0;    // added to the real checksum
};

class LiveMoveTest : public HostServiceTest {
 protected:
  // Sends `state` of `key` as one LIVE_STATE chunk to `host`.
  absl::Status SendLiveState(const cluster::ActorKey& key, const std::string& state, const LiveChunk& c,
                             const std::string& host = "host-0") {
    capnp::MallocMessageBuilder header;
    auto body = cluster::InitBody<proto::expert::LiveStateRequest>(header, proto::MessageKind::LIVE_STATE);
    key.ToProto(body.initActor());
    body.setSender(c.sender);
    auto chunk = body.initChunk();
    chunk.setVersion(c.version);
    chunk.setIndex(0);
    chunk.setCount(1);
    chunk.setOffset(0);
    chunk.setTotalBytes(static_cast<uint64_t>(static_cast<int64_t>(state.size()) + c.total_bytes_delta));
    chunk.setChecksum(ChecksumOf(state) + c.checksum_delta);
    return CallAsync(header, cluster::AttachState(header, state), host)->Wait();
  }
};

TEST_F(LiveMoveTest, TheNewHostParksRequestsUntilTheStateIsInAndRefusesBadChunksChangingNothing) {
  ASSERT_TRUE(SendPlacement(1, StaticTable()).ok());
  // Epoch 2: host-1's expert (0, 1) moves to host-0 live after step 1.
  const cluster::ActorKey moved = cluster::ActorKey::Expert(0, 1);
  ASSERT_TRUE(SendPlacement(2, StaticTable({moved}), "host-0", {{moved, "host-1", "host-0", false}}, 1).ok());
  EXPECT_EQ(service_->num_awaiting_restore(), 0u);  // a live arrival does not hold the host's steps

  BucketSpec step2;
  step2.expert = 1;
  step2.step = 2;
  step2.version = 1;
  step2.epoch = 2;
  std::shared_ptr<Pending> parked = ForwardAsync(step2);
  absl::SleepFor(absl::Milliseconds(100));
  ASSERT_FALSE(parked->Done());
  const std::vector<uint64_t> before = Checksums();

  const std::string state = StateOf(moved, 3);
  LiveChunk wrong_sender;
  wrong_sender.sender = "host-2";
  EXPECT_EQ(SendLiveState(moved, state, wrong_sender).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(SendLiveState(cluster::ActorKey::Expert(0, 3), StateOf(cluster::ActorKey::Expert(0, 3), 3), {}).code(),
            absl::StatusCode::kNotFound);  // no move brings it
  LiveChunk wrong_size;
  wrong_size.total_bytes_delta = 4;
  EXPECT_EQ(SendLiveState(moved, state, wrong_size).code(), absl::StatusCode::kInvalidArgument);
  LiveChunk bad_checksum;
  bad_checksum.checksum_delta = 1;
  EXPECT_EQ(SendLiveState(moved, state, bad_checksum).code(), absl::StatusCode::kDataLoss);
  LiveChunk other_version;
  other_version.version = 2;
  EXPECT_EQ(SendLiveState(moved, state, other_version).code(), absl::StatusCode::kInvalidArgument);
  std::string poisoned = state;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(poisoned.data() + 8, &nan, sizeof(nan));
  EXPECT_EQ(SendLiveState(moved, poisoned, {}).code(), absl::StatusCode::kInvalidArgument);

  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_FALSE(parked->Done());  // still waiting for a good state
  EXPECT_EQ(Checksums(), before);
  auto version = steps_->Status(0);
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(version->version, 0u);

  // The good state: installed, the parked request served, nothing else touched.
  ASSERT_TRUE(SendLiveState(moved, state, {}).ok());
  EXPECT_TRUE(parked->Wait().ok()) << parked->Wait();
  auto weights = PullExpert(0, 1, 1);
  ASSERT_TRUE(weights.ok()) << weights.status();
  EXPECT_EQ(0, std::memcmp(weights->data(), state.data(), weights->size() * sizeof(float)));
  EXPECT_EQ(Checksums(), before);  // no rollback: the host's own actors are as they were
  auto after = steps_->Status(0);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->version, 0u);
  // Installed once: a second copy finds no move bringing it.
  EXPECT_EQ(SendLiveState(moved, state, {}).code(), absl::StatusCode::kNotFound);
}

TEST_F(LiveMoveTest, TheOldHostServesUpToTheBoundaryThenStreamsTheStateAndRefusesLaterSteps) {
  ASSERT_NO_FATAL_FAILURE(StartSecondHost());
  ASSERT_TRUE(SendPlacement(1, StaticTable(), "host-0").ok());
  ASSERT_TRUE(SendPlacement(1, StaticTable(), "host-1").ok());
  // Epoch 2: host-0's expert (0, 0) moves to host-1 live after step 1.
  const cluster::ActorKey moved = cluster::ActorKey::Expert(0, 0);
  const std::vector<cluster::Move> live = {{moved, "host-0", "host-1", false}};
  ASSERT_TRUE(SendPlacement(2, StaticTable({moved}), "host-0", live, 1).ok());
  ASSERT_TRUE(SendPlacement(2, StaticTable({moved}), "host-1", live, 1).ok());

  // Step 1 still runs on the old table: host-0 serves the expert at epoch 1.
  BucketSpec step1;
  step1.epoch = 1;
  ASSERT_TRUE(Forward(step1).ok());
  ASSERT_TRUE(Backward(step1).ok());
  ASSERT_NO_FATAL_FAILURE(CompleteStep(1));

  // Step 2: host-1 serves it (once the streamed state is in).
  BucketSpec step2 = step1;
  step2.step = 2;
  step2.version = 1;
  step2.epoch = 2;
  step2.host = "host-1";
  auto served = Forward(step2);
  ASSERT_TRUE(served.ok()) << served.status();
  // host-0 refuses step 2 for it, with the new epoch, at the old epoch and the new one.
  BucketSpec old_host = step2;
  old_host.host = "host-0";
  const absl::Status moved_away = Forward(old_host).status();
  EXPECT_EQ(moved_away.code(), absl::StatusCode::kAborted) << moved_away;
  old_host.epoch = 1;
  const absl::Status stale = Forward(old_host).status();
  EXPECT_EQ(stale.code(), absl::StatusCode::kAborted) << stale;
  EXPECT_NE(stale.message().find("stale placement epoch 1"), std::string::npos) << stale;
  // host-0's step 2 goes on without it: its status no longer lists the expert.
  auto status = steps_->Status(0);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->version, 1u);
  for (const auto& a : status->actors) EXPECT_FALSE(a.actor == moved) << a.actor.ToString();
}

}  // namespace
}  // namespace sy::expert_host
