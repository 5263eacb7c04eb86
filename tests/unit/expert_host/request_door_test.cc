// The expert host's door on its own: step requests are dispatched by their union
// member (an unknown one is refused), a step must be >= 1 with the host's M and is
// refused while an actor waits for its restore (status is not), apply's clip scale
// and learning rate are checked, stale placement epochs (and epoch 0 once there
// is a table) are refused naming the current one, and a placement request must carry a table.
#include "services/expert_host/request_door.h"

#include <map>
#include <memory>
#include <variant>

#include <gtest/gtest.h>

#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/schema.h>

#include "proto/coordinator.capnp.h"
#include "proto/expert.capnp.h"
#include "services/cluster/envelope.h"
#include "services/cluster/placement_table.h"
#include "tests/unit/expert_host/host_fixture.h"

namespace sy::expert_host {
namespace {

class RequestDoorTest : public ::testing::Test {
 protected:
  RequestDoorTest() : model_(testing::SmallHostModel(), 7, 2), door_(Config(), &model_), held_(&model_, 0) {}

  static HostConfig Config() {
    HostConfig config;
    config.model = testing::SmallHostModel();
    config.micro_batches = testing::kM;
    config.max_bucket_rows = 8;
    config.num_hosts = 2;
    return config;
  }

  absl::StatusOr<StepActorMsg> Step(capnp::MallocMessageBuilder& message) {
    return door_.Step(message.getRoot<proto::expert::StepRequest>().asReader(), held_, transport::Responder());
  }

  ModelActors model_;
  RequestDoor door_;
  HeldActors held_;
};

TEST_F(RequestDoorTest, EachStepPhaseBecomesItsStepActorMessage) {
  capnp::MallocMessageBuilder commit;
  auto c = commit.initRoot<proto::expert::StepRequest>().initCommit();
  c.setStep(3);
  c.setTotalMicroBatches(testing::kM);
  c.initMicroBatches(1).set(0, 1);
  absl::StatusOr<StepActorMsg> m = Step(commit);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_TRUE(std::holds_alternative<CommitMsg>(*m));
  EXPECT_EQ(std::get<CommitMsg>(*m).step, 3u);
  EXPECT_EQ(std::get<CommitMsg>(*m).micro_batches, std::vector<uint32_t>{1});

  capnp::MallocMessageBuilder apply;
  auto a = apply.initRoot<proto::expert::StepRequest>().initApply();
  a.setStep(3);
  a.setTotalMicroBatches(testing::kM);
  a.setClipScale(0.5f);
  a.setLearningRate(0.01f);
  m = Step(apply);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_TRUE(std::holds_alternative<StepApplyMsg>(*m));
  EXPECT_EQ(std::get<StepApplyMsg>(*m).clip_scale, 0.5f);

  capnp::MallocMessageBuilder status;
  status.initRoot<proto::expert::StepRequest>().setStatus();
  m = Step(status);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(std::holds_alternative<HostStatusMsg>(*m));
}

TEST_F(RequestDoorTest, BadStepRequestsAreRefused) {
  capnp::MallocMessageBuilder message;
  auto gather = message.initRoot<proto::expert::StepRequest>().initGatherNorms();
  gather.setStep(0);
  gather.setTotalMicroBatches(testing::kM);
  EXPECT_EQ(Step(message).status().code(), absl::StatusCode::kInvalidArgument);  // steps start at 1
  gather.setStep(1);
  gather.setTotalMicroBatches(testing::kM + 1);
  EXPECT_EQ(Step(message).status().code(), absl::StatusCode::kInvalidArgument);  // not the host's M

  auto apply = message.initRoot<proto::expert::StepRequest>().initApply();
  apply.setStep(1);
  apply.setTotalMicroBatches(testing::kM);
  apply.setClipScale(0.0f);
  EXPECT_EQ(Step(message).status().code(), absl::StatusCode::kInvalidArgument);

  auto commit = message.initRoot<proto::expert::StepRequest>().initCommit();
  commit.setStep(1);
  commit.setTotalMicroBatches(testing::kM);
  commit.initMicroBatches(1).set(0, testing::kM);
  EXPECT_EQ(Step(message).status().code(), absl::StatusCode::kInvalidArgument);  // micro-batch outside [0, M)

  // A union member this schema does not have (a newer sender): refused, not read as another phase.
  auto body = message.initRoot<proto::expert::StepRequest>();
  body.initCommit().setStep(1);
  const auto schema = capnp::Schema::from<proto::expert::StepRequest>().getProto().getStruct();
  capnp::toAny(body).getDataSection()[schema.getDiscriminantOffset() * 2] = 9;
  const absl::Status unknown = Step(message).status();
  EXPECT_EQ(unknown.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.message().find("unknown step request"), std::string::npos) << unknown;
}

TEST_F(RequestDoorTest, TheStepProtocolWaitsForRestoresButStatusDoesNot) {
  std::map<cluster::ActorKey, std::shared_ptr<ParamActor>> placed = {{cluster::ActorKey::Expert(0, 1), nullptr}};
  held_.Replace(1, {cluster::ActorKey::Expert(0, 1)}, std::move(placed));
  capnp::MallocMessageBuilder commit;
  auto c = commit.initRoot<proto::expert::StepRequest>().initCommit();
  c.setStep(1);
  c.setTotalMicroBatches(testing::kM);
  EXPECT_EQ(Step(commit).status().code(), absl::StatusCode::kUnavailable);
  capnp::MallocMessageBuilder status;
  status.initRoot<proto::expert::StepRequest>().setStatus();
  EXPECT_TRUE(Step(status).ok());
}

TEST_F(RequestDoorTest, AStaleEpochIsAbortedWithTheCurrentOne) {
  const absl::Status stale = StaleEpochError(2, 5);
  EXPECT_EQ(stale.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(cluster::CurrentEpochFrom(stale), 5u);
}

// A STEP_COMMIT request stamped with placement epoch `epoch`, as the door receives it.
transport::DecodedMessage RequestOfEpoch(uint64_t epoch) {
  capnp::MallocMessageBuilder b;
  cluster::InitBody<proto::expert::StepRequest>(b, proto::MessageKind::STEP_COMMIT, epoch).setStatus();
  b.getRoot<proto::Envelope>().setSender("trainer-0");
  b.getRoot<proto::Envelope>().setRequestId(1);
  auto decoded = transport::DecodedMessage::Decode(transport::Message({}, transport::EncodeHeader(b)), {});
  EXPECT_TRUE(decoded.ok()) << decoded.status();
  return *std::move(decoded);
}

TEST_F(RequestDoorTest, WithACoordinatorEpochZeroAndOlderEpochsAreRefused) {
  for (uint64_t old : {0, 1, 4}) {
    const absl::Status refused = RequestDoor::CheckEpoch(RequestOfEpoch(old), 5, /*has_coordinator=*/true);
    EXPECT_EQ(refused.code(), absl::StatusCode::kAborted) << "epoch " << old;
    EXPECT_EQ(cluster::CurrentEpochFrom(refused), 5u) << "the sender re-fetches the table of epoch 5";
  }
  EXPECT_TRUE(RequestDoor::CheckEpoch(RequestOfEpoch(5), 5, true).ok());
  EXPECT_TRUE(RequestDoor::CheckEpoch(RequestOfEpoch(6), 5, true).ok());
  // A host without a coordinator serves the epoch-0 static placement.
  EXPECT_TRUE(RequestDoor::CheckEpoch(RequestOfEpoch(0), 3, /*has_coordinator=*/false).ok());
  EXPECT_EQ(RequestDoor::CheckEpoch(RequestOfEpoch(2), 3, false).code(), absl::StatusCode::kAborted);
}

TEST_F(RequestDoorTest, APlacementRequestMustCarryATable) {
  capnp::MallocMessageBuilder message;
  message.initRoot<proto::coordinator::PlacementRequest>().setGet();
  auto place =
      door_.Placement(message.getRoot<proto::coordinator::PlacementRequest>().asReader(), transport::Responder());
  EXPECT_EQ(place.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sy::expert_host
