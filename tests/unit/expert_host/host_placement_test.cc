// HostService under a coordinator's placement: the cluster's first table (pushed as
// initial) starts the actors it adds from their initial state; a later table that adds an actor makes it
// wait (Unavailable) for a chunkIn restore and a removed actor answers NotFound; a
// restore sent right behind its table finds the actor; a restore in the middle of a
// step aborts its waiting requests and the replayed step matches a fresh host's;
// requests with a stale placement epoch are refused and change nothing; state is
// streamed out only to the node that asks.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/transport/envelope_codec.h"
#include "gpu/model/bucket_codec.h"
#include "proto/expert.capnp.h"
#include "proto/parameter.capnp.h"
#include "services/cluster/envelope.h"
#include "services/cluster/placement_table.h"
#include "services/cluster/step_wire.h"
#include "tests/unit/expert_host/host_fixture.h"

namespace sy::expert_host {
namespace {

using testing::BucketSpec;
using testing::HostServiceTest;
using testing::kM;
using testing::Pending;

TEST_F(HostServiceTest, AnActorPlacedAtRuntimeWaitsForItsRestoreAndARemovedOneIsGone) {
  // A step-2 forward parked on expert (0, 2), which the table moves away.
  BucketSpec parked;
  parked.layer = 0;
  parked.expert = 2;
  parked.step = 2;
  parked.version = 1;
  std::shared_ptr<Pending> waiting = ForwardAsync(parked);
  absl::SleepFor(absl::Milliseconds(100));
  ASSERT_FALSE(waiting->Done());

  // Epoch 1, the cluster's first placement, is the static one; at epoch 2 expert (0, 1)
  // joins host-0 (it was host-1's), expert (0, 2) leaves it.
  ASSERT_TRUE(SendPlacement(1, StaticTable()).ok());
  const cluster::ActorKey joined = cluster::ActorKey::Expert(0, 1), left = cluster::ActorKey::Expert(0, 2);
  ASSERT_TRUE(SendPlacement(2, StaticTable({joined, left})).ok());
  EXPECT_EQ(service_->placement_epoch(), 2u);
  EXPECT_EQ(service_->num_experts(), 4u);
  EXPECT_EQ(service_->num_awaiting_restore(), 1u);
  EXPECT_EQ(waiting->Wait().code(), absl::StatusCode::kNotFound) << waiting->Wait();

  BucketSpec to_left = parked;
  to_left.step = 1;
  to_left.version = 0;
  EXPECT_EQ(Forward(to_left).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(PullExpert(0, 2).status().code(), absl::StatusCode::kNotFound);

  const std::vector<uint64_t> before = Checksums();
  BucketSpec to_joined = to_left;
  to_joined.expert = 1;
  auto refused = Forward(to_joined);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(refused.status().message().find("is being restored"), std::string::npos) << refused.status();
  EXPECT_EQ(Backward(to_joined).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(PullExpert(0, 1).status().code(), absl::StatusCode::kUnavailable);
  std::vector<cluster::MicroBatchStatsValue> stats(kM);
  for (int m = 0; m < kM; ++m) stats[m].micro_batch = static_cast<uint32_t>(m);
  EXPECT_EQ(steps_->Commit(1, stats).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Checksums(), before);
  auto status = steps_->Status(0);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->version, 0u);
  for (const auto& a : status->actors) EXPECT_EQ(a.contributions, 0u);

  // The restore lands (the coordinator's RestoreCheckpoint at step 0): the actor serves its weights.
  const std::string state = StateOf(joined, 1);
  ASSERT_TRUE(Restore(joined, 0, state, 2).ok());
  EXPECT_EQ(service_->num_awaiting_restore(), 0u);
  auto weights = PullExpert(0, 1);
  ASSERT_TRUE(weights.ok()) << weights.status();
  ASSERT_EQ(weights->size() * sizeof(float) * 3, state.size());
  EXPECT_EQ(0, std::memcmp(weights->data(), state.data(), weights->size() * sizeof(float)));
  auto forward = Forward(to_joined);
  ASSERT_TRUE(forward.ok()) << forward.status();
  ASSERT_TRUE(Backward(to_joined).ok());
  CompleteStep(1);
  auto applied = steps_->Status(0);
  ASSERT_TRUE(applied.ok());
  EXPECT_EQ(applied->version, 1u);
  for (const auto& a : applied->actors) EXPECT_EQ(a.version, 1u);
}

TEST_F(HostServiceTest, TheFirstPlacementStartsTheActorsItAddsFromTheirInitialState) {
  // A first placement unlike the static one (sy-coordinator --initial_placement): expert
  // (0, 1), host-1's in the static share, starts on host-0 as host-1 would start it.
  StartSecondHost();
  const cluster::ActorKey joined = cluster::ActorKey::Expert(0, 1);
  ASSERT_TRUE(SendFirstPlacement(StaticTable({joined})).ok());
  EXPECT_EQ(service_->num_awaiting_restore(), 0u);
  EXPECT_EQ(service_->num_experts(), 5u);  // its static 4 of 2 Switch layers x 4 experts, and the one added
  auto weights = PullExpert(0, 1);
  ASSERT_TRUE(weights.ok()) << weights.status();
  BucketSpec bucket;
  bucket.expert = 1;
  auto here = Forward(bucket);
  ASSERT_TRUE(here.ok()) << here.status();
  bucket.host = "host-1";
  auto static_holder = Forward(bucket);  // host-1 has no table yet: its static share
  ASSERT_TRUE(static_holder.ok()) << static_holder.status();
  // The same weights: the same output, byte for byte.
  const transport::Frame &a = here->data(0), &b = static_holder->data(0);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size()));
}

TEST_F(HostServiceTest, ARestoreSentRightBehindItsPlacementFindsTheActor) {
  // The coordinator sends the table and then the restore chunks without waiting in between.
  const cluster::ActorKey joined = cluster::ActorKey::Dense(1);  // host-1's shard
  std::shared_ptr<Pending> placed = SendPlacementAsync(4, StaticTable({joined}));
  const std::string state = StateOf(joined, 2);
  const absl::Status restored = Restore(joined, 0, state, 4);
  EXPECT_TRUE(restored.ok()) << restored;
  ASSERT_TRUE(placed->Wait().ok());
  EXPECT_EQ(service_->num_awaiting_restore(), 0u);
  EXPECT_EQ(service_->num_shards(), (NumShards() + 1) / 2 + 1);
}

TEST_F(HostServiceTest, ARestoreInTheMiddleOfAStepAbortsItsWaitersAndTheReplayMatchesAFreshHost) {
  BucketSpec b;  // expert (0, 0)
  ASSERT_TRUE(Forward(b).ok());
  ASSERT_TRUE(Backward(b).ok());
  CompleteStep(1);

  // Step 2 half done: micro-batch 0's contribution kept, micro-batch 1 ran forward
  // only, micro-batch 0 committed, the leader's gather waits for micro-batch 1, and
  // a step-3 forward waits for version 2.
  BucketSpec mb0 = b, mb1 = b;
  mb0.step = mb1.step = 2;
  mb0.version = mb1.version = 1;
  mb1.micro_batch = 1;
  ASSERT_TRUE(Forward(mb0).ok());
  ASSERT_TRUE(Backward(mb0).ok());
  ASSERT_TRUE(Forward(mb1).ok());
  cluster::MicroBatchStatsValue first;
  first.micro_batch = 0;
  ASSERT_TRUE(steps_->Commit(2, {first}).ok());
  std::shared_ptr<Pending> gather = GatherAsync(2);
  BucketSpec ahead = b;
  ahead.step = 3;
  ahead.version = 2;
  std::shared_ptr<Pending> forward = ForwardAsync(ahead);
  absl::SleepFor(absl::Milliseconds(100));
  ASSERT_FALSE(gather->Done());
  ASSERT_FALSE(forward->Done());

  // Recovery rolls the cluster back to step 1.
  RestoreAll(1, 5);
  for (auto* pending : {gather.get(), forward.get()}) {
    const absl::Status s = pending->Wait();
    EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << s;
    EXPECT_NE(s.message().find("rolled back to step 1"), std::string::npos) << s;
  }
  // Micro-batch 1's forward was dropped: its backward (sent before the trainer saw the
  // rollback) is aborted too, so the trainer waits for the rollback order.
  const absl::Status late_backward = Backward(mb1).status();
  EXPECT_EQ(late_backward.code(), absl::StatusCode::kAborted) << late_backward;
  auto status = steps_->Status(0);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->version, 1u);
  EXPECT_TRUE(status->missing_micro_batches.empty()) << "the step-2 commit was dropped";
  for (const auto& a : status->actors) {
    EXPECT_EQ(a.version, 1u);
    EXPECT_EQ(a.contributions, 0u);
  }

  // The replay of step 2: both micro-batches, commit, gather, apply.
  auto replay = [&] {
    for (BucketSpec* m : {&mb0, &mb1}) {
      ASSERT_TRUE(Forward(*m).ok());
      ASSERT_TRUE(Backward(*m).ok());
    }
    CompleteStep(2);
  };
  replay();
  const std::vector<uint64_t> recovered = Checksums();

  TearDown();
  Start(absl::Seconds(30));  // a fresh host, restored at step 1 from the same checkpoint
  RestoreAll(1, 5);
  replay();
  EXPECT_EQ(Checksums(), recovered);
}

TEST_F(HostServiceTest, RequestsWithAStalePlacementEpochAreAbortedAndChangeNothing) {
  ASSERT_TRUE(SendPlacement(3, StaticTable()).ok());
  EXPECT_EQ(service_->placement_epoch(), 3u);
  EXPECT_EQ(service_->num_awaiting_restore(), 0u);
  auto older = SendPlacement(2, StaticTable());
  EXPECT_EQ(older.code(), absl::StatusCode::kAborted) << older;
  EXPECT_EQ(service_->placement_epoch(), 3u);

  const std::vector<uint64_t> before = Checksums();
  BucketSpec stale;
  stale.epoch = 2;
  auto forward = Forward(stale);
  EXPECT_EQ(forward.status().code(), absl::StatusCode::kAborted);
  EXPECT_NE(forward.status().message().find("stale placement epoch 2; current is 3"), std::string::npos)
      << forward.status();
  EXPECT_EQ(cluster::CurrentEpochFrom(forward.status()), 3u);
  BucketSpec current = stale;
  current.epoch = 3;
  ASSERT_TRUE(Forward(current).ok());  // a forward keeps nothing but the saved activations
  EXPECT_EQ(Backward(stale).status().code(), absl::StatusCode::kAborted);

  capnp::MallocMessageBuilder push_header;
  {
    auto env = cluster::InitEnvelope(push_header, proto::MessageKind::PARAM_PUSH);
    env.setPlacementEpoch(1);
    auto body = env.initBody().initAs<proto::parameter::PushRequest>();
    body.setShard(0);
    body.setStep(1);
    body.initMicroBatches(1).set(0, 0);
    body.setElementCount(2048);
    transport::SetTensor(env.initTensors(1)[0], "g", proto::TensorRole::GRADIENTS, proto::DType::F32, {2048});
  }
  std::vector<float> g(2048, 1.0f);
  EXPECT_EQ(client_->Call({"host-0"}, push_header, {gpu::EncodeFloats(g.data(), g.size(), proto::DType::F32)},
                          absl::Now() + absl::Seconds(10))
                .status()
                .code(),
            absl::StatusCode::kAborted);

  capnp::MallocMessageBuilder commit_header;
  {
    auto commit = cluster::InitBody<proto::expert::StepRequest>(commit_header, proto::MessageKind::STEP_COMMIT, 2)
                      .initCommit();
    commit.setStep(1);
    commit.setTotalMicroBatches(kM);
    commit.initMicroBatches(2).set(1, 1);
  }
  EXPECT_EQ(client_->Call({"host-0"}, commit_header, {}, absl::Now() + absl::Seconds(10)).status().code(),
            absl::StatusCode::kAborted);

  EXPECT_EQ(Checksums(), before);
  auto status = steps_->Status(0);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->version, 0u);
  for (const auto& a : status->actors) EXPECT_EQ(a.contributions, 0u);
  EXPECT_EQ(status->missing_micro_batches.size(), static_cast<size_t>(kM));  // the stale commit counted nothing
  // Epoch 0 (no coordinator) is not checked.
  BucketSpec unchecked = current;
  unchecked.epoch = 0;
  unchecked.micro_batch = 1;
  EXPECT_TRUE(Forward(unchecked).ok());
}

TEST_F(HostServiceTest, StateStreamsOnlyToTheNodeThatAsks) {
  auto stream_out = [&](const std::string& destination) {
    capnp::MallocMessageBuilder header;
    auto req = cluster::InitBody<proto::expert::StateStreamRequest>(header, proto::MessageKind::STATE_STREAM);
    cluster::ActorKey::Expert(0, 0).ToProto(req.initActor());
    req.setCheckpointId(1);
    auto out = req.initStreamOut();
    out.setDestination(destination);
    out.setDestinationEndpoint("inproc://" + destination);
    out.setChunkBytes(1024);
    return client_->Call({"host-0"}, header, {}, absl::Now() + absl::Seconds(10)).status();
  };
  const absl::Status to_another = stream_out("host-1");  // a host-to-host move
  EXPECT_EQ(to_another.code(), absl::StatusCode::kFailedPrecondition) << to_another;
  EXPECT_NE(to_another.message().find("not to host-1 at inproc://host-1"), std::string::npos) << to_another;
  const absl::Status to_asker = stream_out("trainer-0");  // the asking node; this host has no coordinator link
  EXPECT_EQ(to_asker.code(), absl::StatusCode::kFailedPrecondition) << to_asker;
  EXPECT_NE(to_asker.message().find("no coordinator link"), std::string::npos) << to_asker;
}

}  // namespace
}  // namespace sy::expert_host
