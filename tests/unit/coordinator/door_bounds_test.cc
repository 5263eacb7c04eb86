// The coordinator's bounds at its door, over real sockets with fake nodes: it remembers
// at most --max_nodes nodes (a known node always registers again; one dead longer than
// --forget_dead_after_s is forgotten and makes room), stores no outsized
// registration, and takes a checkpoint chunk only from the host it asked for that actor,
// within the state size the actor's first chunk declared, once per index. Every refusal
// is counted in sy_refused_total{reason} and changes nothing.
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "proto/checkpoint.capnp.h"
#include "proto/coordinator.capnp.h"
#include "services/cluster/envelope.h"
#include "tests/unit/coordinator/service_fixture.h"

namespace sy::coordinator {
namespace {

using testing::FakeHost;
using testing::FakeState;
using testing::Heartbeater;
using testing::WaitFor;

class DoorBoundsTest : public ServiceTest {
 protected:
  double Refused(const std::string& reason) {
    return registry_.GetCounter("sy_refused_total", "Requests refused at a service's door, by reason.",
                                {{"reason", reason}})
        .value();
  }

  // Chunk `index` of `state` (declared as `count` chunks) of `actor` for checkpoint `id`
  // at `step`, sent by `host`; `bytes` overrides the chunk's bytes when set.
  absl::Status SendChunk(FakeHost& host, const cluster::ActorKey& actor, uint64_t id, uint64_t step,
                         const std::string& state, uint32_t index, uint32_t count,
                         std::optional<std::string> bytes = std::nullopt) {
    capnp::MallocMessageBuilder b;
    auto chunk = cluster::InitBody<proto::checkpoint::ChunkRequest>(b, proto::MessageKind::CHECKPOINT_CHUNK);
    chunk.setCheckpointId(id);
    chunk.setStep(step);
    actor.ToProto(chunk.initActor());
    chunk.setHost(host.id());
    auto in = chunk.initChunk();
    in.setVersion(step);
    in.setIndex(index);
    in.setCount(count);
    in.setOffset(uint64_t{index} * options_.chunk_bytes);
    in.setTotalBytes(state.size());
    in.setChecksum(7);
    const std::string part = bytes ? *bytes : state.substr(index * options_.chunk_bytes, options_.chunk_bytes);
    return host.Call(b, cluster::AttachState(b, part)).status();
  }

  // The checkpoint in progress (0: none).
  uint64_t InProgress() {
    std::optional<cluster::AdminReplyMessage> holder;
    return Status(holder).getCheckpointInProgress();
  }
};

TEST_F(DoorBoundsTest, ANewNodeBeyondMaxNodesIsRefusedAndAKnownOneRegistersAgain) {
  options_.max_nodes = 3;
  StartService();
  ASSERT_NO_FATAL_FAILURE(RegisterTwoHostsAndATrainer());
  auto extra = Host("host-2");
  ASSERT_NE(extra, nullptr);
  EXPECT_EQ(extra->Register().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Refused("capacity"), 1);
  EXPECT_TRUE(h0_->Register().ok());  // known: always
  std::optional<cluster::AdminReplyMessage> holder;
  EXPECT_EQ(Status(holder).getHostsAlive(), 2u);
}

TEST_F(DoorBoundsTest, ANodeDeadLongerThanTheBoundIsForgottenAndMakesRoom) {
  options_.max_nodes = 3;
  options_.heartbeat_timeout = absl::Milliseconds(300);
  options_.forget_dead_after = absl::Milliseconds(300);
  StartService();
  ASSERT_NO_FATAL_FAILURE(RegisterTwoHostsAndATrainer());
  auto extra = Host("host-2");
  ASSERT_NE(extra, nullptr);
  EXPECT_EQ(extra->Register().code(), absl::StatusCode::kResourceExhausted);
  {
    Heartbeater beats({h0_.get(), h1_.get()}, {});  // the trainer falls silent: dead, then forgotten
    EXPECT_TRUE(WaitFor([&] { return extra->Register().ok(); }));
    std::optional<cluster::AdminReplyMessage> holder;
    EXPECT_EQ(Status(holder).getHostsAlive(), 3u);
  }
  EXPECT_GE(Refused("capacity"), 1);
}

TEST_F(DoorBoundsTest, ARegistrationThatWouldStoreTooMuchIsRefused) {
  StartService();
  auto host = Host("host-0");
  ASSERT_NE(host, nullptr);
  capnp::MallocMessageBuilder b;
  auto req = cluster::InitBody<proto::coordinator::RegisterRequest>(b, proto::MessageKind::REGISTER);
  req.setNodeId("host-0");
  req.setRole(proto::coordinator::Role::EXPERT_HOST);
  req.setEndpoint(host->endpoint());
  req.setDevice(std::string(32u << 10, 'd'));
  req.setIncarnation(1);
  auto refused = host->Call(b);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
  EXPECT_EQ(Refused("oversized"), 1);
  std::optional<cluster::AdminReplyMessage> holder;
  EXPECT_EQ(Status(holder).getHostsAlive(), 0u);  // nothing was stored
  EXPECT_TRUE(host->Register().ok());
}

TEST_F(DoorBoundsTest, ChunksComeOnlyFromTheAskedHostWithinTheirDeclaredSizeOnce) {
  options_.checkpoint_every = 10;  // asked ahead of the hosts: they stream nothing until step 10
  StartService();
  ASSERT_NO_FATAL_FAILURE(RegisterTwoHostsAndATrainer());
  Heartbeater beats({h0_.get(), h1_.get()}, {trainer_.get()});
  beats.step = 1;
  ASSERT_TRUE(WaitFor([&] { return InProgress() == 1; }));
  ASSERT_TRUE(WaitFor([&] { return !h0_->actors().empty(); }));
  const cluster::ActorKey actor = h0_->actors().front();
  const std::string state = FakeState(actor, 10);  // 3 chunks of 1024 bytes

  // host-1 was not asked for host-0's actor.
  EXPECT_EQ(SendChunk(*h1_, actor, 1, 10, state, 0, 3).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Refused("permission"), 1);
  // host-0: a count that does not fit the declared size, a chunk larger than a chunk,
  // then a good chunk and its duplicate, and a chunk declaring another size.
  EXPECT_EQ(SendChunk(*h0_, actor, 1, 10, state, 0, 4000).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SendChunk(*h0_, actor, 1, 10, state, 1, 3, std::string(8192, 'x')).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(SendChunk(*h0_, actor, 1, 10, state, 0, 3).ok());
  EXPECT_EQ(SendChunk(*h0_, actor, 1, 10, state, 0, 3).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SendChunk(*h0_, actor, 1, 10, state + std::string(2048, 'y'), 1, 5).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Refused("chunk"), 4);
  EXPECT_EQ(InProgress(), 1u);  // still being taken, nothing committed
  EXPECT_EQ(LatestCheckpoint(), 0u);
}

}  // namespace
}  // namespace sy::coordinator
