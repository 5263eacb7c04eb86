// HostService replication: two hosts holding one expert, each serving every other
// micro-batch, end bit-identical to the expert trained on one host; bad replica
// gradients (bf16 ones for an expert among them) are refused and change nothing; a
// step open when the replica hosts change at once does not close.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/transport/envelope_codec.h"
#include "gpu/model/bucket_codec.h"
#include "proto/expert.capnp.h"
#include "proto/parameter.capnp.h"
#include "services/cluster/actor_key.h"
#include "services/cluster/envelope.h"
#include "services/cluster/step_wire.h"
#include "tests/unit/expert_host/host_fixture.h"

namespace sy::expert_host {
namespace {

using testing::BucketSpec;
using testing::HostServiceTest;
using testing::kM;

// Replication: expert (0, 0) on host-0 only, or on host-0 and host-1 (each serving
// every other micro-batch), restored everywhere from the same state at step 0.
class ReplicaExchangeTest : public HostServiceTest {
 protected:
  const cluster::ActorKey kExpert = cluster::ActorKey::Expert(0, 0);

  void SetUpPair(bool replicated) {
    Start(absl::Seconds(30));
    ASSERT_NO_FATAL_FAILURE(StartSecondHost());
    auto table = StaticTable();
    if (replicated) table[kExpert] = {"host-0", "host-1"};
    for (const char* host : {"host-0", "host-1"}) ASSERT_TRUE(SendPlacement(1, table, host).ok()) << host;
    for (const std::string& host : table[kExpert]) {
      ASSERT_TRUE(Restore(kExpert, 0, StateOf(kExpert, 3), 1, host).ok()) << host;
    }
    pair_steps_ = std::make_unique<trainer::StepClient>(
        client_.get(), std::vector<std::string>{"host-0", "host-1"}, kM, "trainer-0", absl::Seconds(10));
    replicated_ = replicated;
  }

  BucketSpec Bucket(uint64_t step, uint32_t m) const {
    BucketSpec b;
    b.step = step;
    b.version = step - 1;
    b.micro_batch = m;
    b.rows = 2 + m;  // a different contribution per micro-batch
    b.epoch = 1;
    b.host = replicated_ && m % 2 == 1 ? "host-1" : "host-0";
    return b;
  }

  void TrainStep(uint64_t step) {
    for (uint32_t m = 0; m < kM; ++m) {
      ASSERT_TRUE(Forward(Bucket(step, m)).ok());
      ASSERT_TRUE(Backward(Bucket(step, m)).ok());
    }
    ASSERT_NO_FATAL_FAILURE(CloseStep(step));
  }

  // Commits every micro-batch of `step` on both hosts, gathers the norms and applies.
  void CloseStep(uint64_t step) {
    std::vector<cluster::MicroBatchStatsValue> stats(kM);
    for (int m = 0; m < kM; ++m) stats[m].micro_batch = static_cast<uint32_t>(m);
    ASSERT_TRUE(pair_steps_->Commit(step, stats).ok());
    auto gathered = pair_steps_->GatherNorms(step);
    ASSERT_TRUE(gathered.ok()) << gathered.status();
    ASSERT_TRUE(pair_steps_->Apply(step, 1.0f, 0.01f).ok());
  }

  // The expert's checksum (weights and moments) on host `h`; 0 when it is not there.
  uint64_t ExpertChecksum(int h) {
    auto status = pair_steps_->Status(h);
    EXPECT_TRUE(status.ok()) << status.status();
    if (!status.ok()) return 0;
    for (const auto& a : status->actors) {
      if (a.actor == cluster::ActorKey::Expert(0, 0)) return a.checksum;
    }
    return 0;
  }

  std::unique_ptr<trainer::StepClient> pair_steps_;
  bool replicated_ = false;
};

TEST_F(ReplicaExchangeTest, ReplicasStayIdenticalAndEqualTheUnreplicatedExpert) {
  ASSERT_NO_FATAL_FAILURE(SetUpPair(/*replicated=*/false));
  for (uint64_t step = 1; step <= 2; ++step) ASSERT_NO_FATAL_FAILURE(TrainStep(step));
  const uint64_t alone = ExpertChecksum(0);
  ASSERT_NE(alone, 0u);
  EXPECT_EQ(ExpertChecksum(1), 0u);

  ASSERT_NO_FATAL_FAILURE(SetUpPair(/*replicated=*/true));
  EXPECT_NE(ExpertChecksum(0), alone);  // the run has not happened yet
  for (uint64_t step = 1; step <= 2; ++step) ASSERT_NO_FATAL_FAILURE(TrainStep(step));
  EXPECT_EQ(ExpertChecksum(0), alone);
  EXPECT_EQ(ExpertChecksum(1), alone);
}

TEST_F(ReplicaExchangeTest, BadReplicaGradientsGetErrorsAndChangeNothing) {
  ASSERT_NO_FATAL_FAILURE(SetUpPair(/*replicated=*/true));
  ASSERT_NO_FATAL_FAILURE(TrainStep(1));
  const int64_t size = 8 * 16 * 2 + 16 + 8;
  struct Case {
    const char* what;
    cluster::ActorKey actor;
    uint64_t step;
    std::vector<uint32_t> micro_batches;
    std::string sender;
    int64_t elements;
    absl::StatusCode code;
    proto::DType dtype = proto::DType::F32;
  };
  auto send = [&](const Case& c) {
    SCOPED_TRACE(c.what);
    capnp::MallocMessageBuilder header;
    auto env = cluster::InitEnvelope(header, proto::MessageKind::REPLICA_GRADIENTS);
    auto body = env.initBody().initAs<proto::expert::ReplicaGradientsRequest>();
    c.actor.ToProto(body.initActor());
    body.setStep(c.step);
    body.setSender(c.sender);
    auto mbs = body.initMicroBatches(static_cast<unsigned>(c.micro_batches.size()));
    auto tensors = env.initTensors(static_cast<unsigned>(c.micro_batches.size()));
    std::vector<transport::Frame> frames;
    const std::vector<float> grad(static_cast<size_t>(c.elements), 0.25f);
    for (unsigned i = 0; i < c.micro_batches.size(); ++i) {
      mbs.set(i, c.micro_batches[i]);
      transport::SetTensor(tensors[i], "gradient", proto::TensorRole::GRADIENTS, c.dtype,
                           {static_cast<uint64_t>(c.elements)});
      frames.push_back(gpu::EncodeFloats(grad.data(), c.elements, c.dtype));
    }
    auto reply = client_->Call({"host-0"}, header, std::move(frames), absl::Now() + absl::Seconds(10));
    EXPECT_EQ(reply.status().code(), c.code) << reply.status();
  };
  const uint64_t before = ExpertChecksum(0);
  // First in step 2, so no f32 contribution decides the step's dtype before it.
  send({"bf16 for an expert", kExpert, 2, {1}, "host-1", size, absl::StatusCode::kInvalidArgument,
        proto::DType::BF16});
  // Step 2 half done on host-0: its own micro-batch 0 is in.
  ASSERT_TRUE(Forward(Bucket(2, 0)).ok());
  ASSERT_TRUE(Backward(Bucket(2, 0)).ok());
  const Case cases[] = {
      {"unknown sender", kExpert, 2, {1}, "host-7", size, absl::StatusCode::kInvalidArgument},
      {"wrong size", kExpert, 2, {1}, "host-1", size - 1, absl::StatusCode::kInvalidArgument},
      {"micro-batch out of range", kExpert, 2, {kM}, "host-1", size, absl::StatusCode::kInvalidArgument},
      {"step 0", kExpert, 0, {1}, "host-1", size, absl::StatusCode::kInvalidArgument},
      {"a closed step", kExpert, 1, {1}, "host-1", size, absl::StatusCode::kFailedPrecondition},
      {"an actor not held here", cluster::ActorKey::Expert(0, 1), 2, {1}, "host-1", size, absl::StatusCode::kNotFound},
      {"a micro-batch this replica served", kExpert, 2, {0, 1}, "host-1", size, absl::StatusCode::kAlreadyExists},
  };
  for (const Case& c : cases) send(c);
  EXPECT_EQ(ExpertChecksum(0), before);
  // Nothing was taken in: the step still completes, and the replicas agree.
  ASSERT_TRUE(Forward(Bucket(2, 1)).ok());
  ASSERT_TRUE(Backward(Bucket(2, 1)).ok());
  ASSERT_NO_FATAL_FAILURE(CloseStep(2));
  EXPECT_EQ(ExpertChecksum(0), ExpertChecksum(1));
}

// A table that replicates the expert at once while step 1 is open on host-0 (its
// micro-batch 0 in, not kept for a peer): host-0 cannot send host-1 the whole step, so
// the step does not close there (a restore or failover replays it). Closing it sent
// host-1 a partial sum, and the two replicas' norms parted.
TEST_F(ReplicaExchangeTest, AStepOpenWhenTheReplicaHostsChangeAtOnceDoesNotClose) {
  ASSERT_NO_FATAL_FAILURE(SetUpPair(/*replicated=*/false));
  ASSERT_TRUE(Forward(Bucket(1, 0)).ok());
  ASSERT_TRUE(Backward(Bucket(1, 0)).ok());
  auto table = StaticTable();
  table[kExpert] = {"host-0", "host-1"};
  for (const char* host : {"host-0", "host-1"}) ASSERT_TRUE(SendPlacement(2, table, host).ok()) << host;
  ASSERT_TRUE(Restore(kExpert, 0, StateOf(kExpert, 3), 2, "host-1").ok());
  replicated_ = true;
  for (uint32_t m = 1; m < kM; ++m) {
    BucketSpec b = Bucket(1, m);
    b.epoch = 2;
    ASSERT_TRUE(Forward(b).ok()) << m;
    ASSERT_TRUE(Backward(b).ok()) << m;
  }
  std::vector<cluster::MicroBatchStatsValue> stats(kM);
  for (int m = 0; m < kM; ++m) stats[m].micro_batch = static_cast<uint32_t>(m);
  ASSERT_TRUE(pair_steps_->Commit(1, stats).ok());
  trainer::StepClient host0(client_.get(), std::vector<std::string>{"host-0"}, kM, "trainer-0", absl::Seconds(10));
  auto gathered = host0.GatherNorms(1);
  EXPECT_TRUE(absl::IsAborted(gathered.status())) << gathered.status();
  EXPECT_NE(gathered.status().message().find("replica hosts changed during step 1"), std::string::npos)
      << gathered.status();
}

}  // namespace
}  // namespace sy::expert_host
